"""The conditional diffusion model of the type-I seesaw (plain torch and numpy, never Ray).

Read :mod:`.ddpm` first: the whole DDPM top to bottom (network, noise schedule, training loss,
DDPM and DDIM samplers with classifier-free guidance). Beside it:

- :mod:`.coordinates`       the spaces a network can work in (the paper's 23 parameters, Casas-Ibarra)
- :mod:`.physics_guidance`  steering each step's predicted x0 into the 3 sigma set, and the projection
- :mod:`.training`          normalisation, the training loop, checkpoints
- :mod:`.generate`          physical points from a checkpoint for a label (ddpm + normalisation + guidance)
- :mod:`.data`              dataset shards, the train/validation split, training arrays (Arrow tables)
- :mod:`.selection`         the paper's chi2 cuts and the other ways of choosing fine-tuning rows
- :mod:`.sampleset`         a sample set's settings, shards and one shard's table
- :mod:`.teacher`           the taught network's training set from a network-free reference
- :mod:`.rounds`            one fine-tuning round over plain callables (orchestration runs it on Ray)
- :mod:`.settings`          the frozen settings dataclasses of every diffusion command
"""
