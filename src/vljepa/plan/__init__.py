"""`vljepa plan`: will a recipe fit these GPUs, with which settings, and for how many GPU-hours.

`live_bytes`: the peak bytes of the tensors a block of code creates (real or fake tensors); `trace`: one
rank's training step traced on fake tensors; `profile_table`: what was traced, kept for the registered models
(`traced_profiles.json`); `planner`: the settings that fit each stage, and its time; `report`: the table a
person reads; `recipes`: what is planned; `measure`: a real step's memory, which the trace is held to.
"""
