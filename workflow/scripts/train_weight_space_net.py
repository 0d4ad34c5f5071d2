"""Snakemake script: method (e), the weight-space network predicting accuracy, on the benchmark's folds."""

from weightzoo.io.atomic import name_damaged_inputs_on_crash
from weightzoo.jobs.weight_space import train_weight_space_net
from weightzoo.logs import to_file

to_file(snakemake.log[0])
name_damaged_inputs_on_crash(snakemake.input)
train_weight_space_net(list(snakemake.input.zoos), snakemake.input.folds, snakemake.output.predictions,
                       snakemake.output.summary, settings=dict(snakemake.params.settings), threads=snakemake.threads)
