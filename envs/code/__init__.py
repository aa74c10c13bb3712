"""rft/Code-v0: Python function-writing tasks graded by running tests in a sandbox.

``rftgym.envs.code.env.CodeEnv`` is the environment; ``rftgym.envs.code.pool.SandboxPool`` and
``rftgym.envs.code.sandbox.SandboxConfig`` run untrusted code. See README.md in this folder.
"""
