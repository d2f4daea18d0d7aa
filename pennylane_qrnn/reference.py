"""Deprecated: the importer of RVQE checkpoints is :mod:`pennylane_qrnn.rvqe`.

"Reference" also named a protocol, a loss and task variants, so the importer of the reference
implementation's (RVQE's) checkpoints took its name. The old names still work here, with a
:class:`FutureWarning` on import:

==============================  =========================================================
old name                        new name (in :mod:`pennylane_qrnn.rvqe`)
==============================  =========================================================
``load_reference_checkpoint``   :func:`~pennylane_qrnn.rvqe.load_rvqe_checkpoint`
``import_reference``            :func:`~pennylane_qrnn.rvqe.import_rvqe_checkpoint`
``reference_task``              :func:`~pennylane_qrnn.rvqe.rvqe_task`
``ReferenceImportError``        :class:`~pennylane_qrnn.rvqe.RVQEImportError`
==============================  =========================================================
"""

import warnings

from .rvqe import RVQEImportError, import_rvqe_checkpoint, load_rvqe_checkpoint, rvqe_task

__all__ = [
    "load_reference_checkpoint",
    "import_reference",
    "reference_task",
    "ReferenceImportError",
]

warnings.warn(
    "pennylane_qrnn.reference is deprecated: import from pennylane_qrnn.rvqe "
    "(load_rvqe_checkpoint, import_rvqe_checkpoint, rvqe_task, RVQEImportError)",
    FutureWarning,
    stacklevel=2,
)

load_reference_checkpoint = load_rvqe_checkpoint
import_reference = import_rvqe_checkpoint
reference_task = rvqe_task
ReferenceImportError = RVQEImportError
