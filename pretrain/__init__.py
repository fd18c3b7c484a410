"""Pretraining on a build output: a GPT (``model``), its trainer (``train``), held-out bits per byte (``heldout``).

``python -m pretrain.train --data out/code30 --model tiny --tokens 200M`` trains; ``pretrain.model.load_checkpoint``
and ``pretrain.heldout.held_out_bpb`` are what evaluation builds on.
"""
