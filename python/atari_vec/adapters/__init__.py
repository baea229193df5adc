"""Adapters to other RL libraries; import the one you need (``atari_vec.adapters.sb3``, ...).

Nothing here is imported by ``atari_vec`` itself, so the core package does not depend on them.
"""
