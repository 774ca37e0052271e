"""Experiment 2 (thesis appendix Table 6): the Jaccard loss arm; every other value as configs/lovasz.py."""

from configs.lovasz import experiment2


def get_config(arg=None):
    return experiment2("jaccard", arg)
