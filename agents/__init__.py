"""Agents: the grid CNN, PPO on the batched VecEnv, reference policies and model files."""
