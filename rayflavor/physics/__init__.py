"""Pure physics: numpy only (plus compiled numba kernels). No Ray, no torch.

* :mod:`.linalg`  batched 3x3 SVD / Takagi / inverse (closed form + Jacobi, and LAPACK),
                  conventions written down once
* :mod:`.mixing`  standard parametrisation, angles and phases, Jarlskog and Majorana invariants
* :mod:`.seesaw`  type-I seesaw model of the diffusion paper (:mod:`.seesaw_kernel`: its fused
                  compiled evaluation)
* :mod:`.fn`      two-flavon Froggatt-Nielsen model of the FN paper (:mod:`.fn_kernel`: its
                  fused compiled evaluation)
* :mod:`.losses`  CC-type loss, FN objectives, seesaw chi2 and 3 sigma test
* :mod:`.data`    versioned experimental data files
"""
