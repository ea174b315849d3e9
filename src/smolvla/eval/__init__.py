"""Evaluation: roll a policy out in simulation, score it (success and the paper's partial credit), report."""
