"""Learning rewards from simulated human preferences (RLHF in a gridworld).

:mod:`.segments` cuts episodes into clips, :mod:`.raters` compares them as a distorted person
would, :mod:`.dataset` keeps the labels, :mod:`.reward_model` fits a Bradley-Terry reward model
on them and :mod:`.reward_env` trains PPO against it (with an optional KL penalty).
"""
