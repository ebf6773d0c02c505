"""The runtime foundation every layer above builds on: atomic file and directory writes (`atomic`), hardware
probes in a child process (`child_probe`), the numeric precision (`precision`) and `torch.compile` (`compilation`)
chosen from the hardware, the checked loading of dataclass configs (`config_loader`), eval mode for a block
(`eval_mode`), ragged rows padded into one batch (`ragged`) and the shared progress bars and console (`progress`).
Nothing here knows the model, the data or training; it imports only `vljepa.errors` and itself.
"""
