"""The teaching tools: watch policies game their reward or misgeneralize, record it, play, and
picture where a policy goes.

What plays comes from one registry (``agents/pretrained/demos.yaml``) or an env id
(:mod:`.players`); everything said about an episode comes from the env's presentation hooks
(``describe``, ``target_cells``, ``HEADLINE``...), so every tool works on every registered env.

==================  ==================================================================
module              what
==================  ==================================================================
:mod:`.players`     NAME and ``--model`` -> who plays, on which env, distributions, seed
:mod:`.panels`      one policy on one distribution, and the text beside it
:mod:`.frames`      the panels drawn side by side, episode after episode
:mod:`.demo`        the window (``goodhart demo``)
:mod:`.record`      GIF or MP4 (``goodhart record``)
:mod:`.play`        a person at the keyboard (``goodhart play``)
:mod:`.display`     whether a window can be opened at all
:mod:`.heatmap`     where a policy goes (``goodhart plot heatmap``)
:mod:`.vfield`      its action probabilities on every cell (``goodhart plot vfield``)
:mod:`.figures`     what the two plots share: outlines, legends, headline numbers
:mod:`.outputs`     output files checked before anything runs
==================  ==================================================================
"""
