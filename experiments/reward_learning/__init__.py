"""Reward learning: RLHF in a gridworld, in one package.

:mod:`.segments` cuts episodes into clips, :mod:`.raters` compares them as a distorted person
would, :mod:`.dataset` keeps the labels, :mod:`.reward_model` fits a Bradley-Terry reward model
on them, :mod:`.reward_env` puts the learned reward (and an optional KL penalty) in place of the
env's, :mod:`.cloning` fits a starting policy to demonstrations (the SFT step),
:mod:`.sources` names the policies that play segments and demonstrations, and
:mod:`.training` is what the trainer adds to a run whose config has a ``reward_model``
section. The trainer and the experiments import this package; it imports neither.
"""
