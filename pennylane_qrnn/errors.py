"""The errors pennylane-qrnn raises on purpose.

Every deliberate refusal (a bad argument, a device that cannot run a construct, a file that is not
what it claims, a run over budget, a model too large to allocate) is a :class:`QRNNError`, so the
``qrnn`` command line can report it in one line while a genuine bug still shows its traceback.
The value and type variants also derive from the built-in ``ValueError`` and ``TypeError``, so
code that catches those keeps working.
"""

from __future__ import annotations

__all__ = [
    "QRNNError",
    "QRNNValueError",
    "QRNNTypeError",
    "DeviceCapabilityError",
    "ModelSizeError",
    "UnsafeFileError",
    "NonFiniteError",
    "InsufficientShotsError",
    "InsufficientShotsWarning",
    "DataNotFoundError",
]


class QRNNError(Exception):
    """Base class of the errors this package raises deliberately.

    Catch it to tell a refusal (bad input, a device that cannot run the model, a file that is not
    what it claims) from a bug.

    **Example**

    >>> from pennylane_qrnn import QRNN
    >>> from pennylane_qrnn.errors import QRNNError
    >>> try:
    ...     QRNN(io_bits=0, workspace=2)
    ... except QRNNError as error:
    ...     print(type(error).__name__, "-", error)
    QRNNValueError - io_bits must be an int >= 1; got 0
    """


class QRNNValueError(QRNNError, ValueError):
    """An argument has the right type but a value outside what is allowed.

    Also a ``ValueError``, so code that catches those keeps working.

    **Example**

    >>> from pennylane_qrnn import QRNN
    >>> try:
    ...     QRNN(io_bits=1, workspace=2, mode="sampled")
    ... except ValueError as error:
    ...     print(type(error).__name__, "-", error)
    QRNNValueError - mode must be one of ('postselect', 'amplified'); got 'sampled'
    """


class QRNNTypeError(QRNNError, TypeError):
    """An argument has the wrong type.

    Also a ``TypeError``, so code that catches those keeps working.

    **Example**

    >>> from pennylane_qrnn import QRNN
    >>> try:
    ...     QRNN(io_bits=1.5, workspace=2)
    ... except TypeError as error:
    ...     print(type(error).__name__, "-", error)
    QRNNTypeError - io_bits must be an int >= 1; got 1.5 (float)
    """


class DeviceCapabilityError(QRNNValueError):
    """A device cannot run a construct the model needs (the message names what works).

    **Example**

    Lightning refuses postselection under deferred measurements (its default method), so a
    postselecting neuron there needs ``mcm_method="tree-traversal"``:

    >>> import numpy as np
    >>> import pennylane as qml
    >>> from pennylane_qrnn import QuantumNeuron
    >>> from pennylane_qrnn.errors import DeviceCapabilityError
    >>> @qml.qnode(qml.device("lightning.qubit", wires=4))
    ... def circuit(weights):
    ...     QuantumNeuron(weights, control_wires=[0, 1], target_wire=2, ancilla_wires=[3],
    ...                   degree=1, order=1)
    ...     return qml.probs(wires=2)
    >>> try:
    ...     circuit(np.zeros(3))
    ... except DeviceCapabilityError as error:
    ...     print(str(error)[:50])
    mcm_method must be 'tree-traversal' for a QuantumN
    """


class ModelSizeError(QRNNValueError):
    """The chosen execution path would need more memory than allowed; raised before allocating.

    The limit is a fraction of the machine's memory, or ``QRNN_MEMORY_LIMIT``.

    **Example**

    >>> from pennylane_qrnn import memory
    >>> from pennylane_qrnn.errors import ModelSizeError
    >>> try:
    ...     memory.check(2**40, "a test model", limit=2**30)
    ... except ModelSizeError as error:
    ...     print(str(error)[:96])
    memory for a test model must be at most 1.0 GiB (the limit argument); got an estimate of 1.0 TiB
    """


class UnsafeFileError(QRNNValueError):
    """A file handed to the program is refused: its format could run code when loaded, or it is
    not the kind of file expected (corrupt, truncated, foreign).

    **Example**

    >>> import tempfile
    >>> from pathlib import Path
    >>> from pennylane_qrnn.checkpoints import load_file
    >>> from pennylane_qrnn.errors import UnsafeFileError
    >>> folder = tempfile.TemporaryDirectory()
    >>> _ = (Path(folder.name) / "model.pt").write_text("not a model")
    >>> try:
    ...     load_file(Path(folder.name) / "model.pt", "a torch.save file", what="model")
    ... except UnsafeFileError as error:
    ...     print(str(error).split("; ")[0], "-", str(error).split(" is ")[-1])
    model must be a torch.save file - not a torch.save file: refused
    >>> folder.cleanup()
    """


class NonFiniteError(QRNNValueError):
    """Parameters, a loss or gradients are NaN or infinite.

    **Example**

    >>> import torch
    >>> from pennylane_qrnn.checkpoints import check_finite_state
    >>> from pennylane_qrnn.errors import NonFiniteError
    >>> try:
    ...     check_finite_state({"weights": torch.tensor([float("inf")])}, "model.pt")
    ... except NonFiniteError as error:
    ...     print(error)
    model.pt must hold finite weights; weights holds NaN or infinity
    """


class InsufficientShotsError(QRNNError, RuntimeError):
    """Too few shots survived a shot run's postselections to estimate some step (raised instead
    of :class:`InsufficientShotsWarning` with ``on_insufficient_shots="raise"``).

    **Example**

    It is a ``RuntimeError``: the input was fine, the run was unlucky or too short.

    >>> from pennylane_qrnn.errors import InsufficientShotsError, QRNNError
    >>> [issubclass(InsufficientShotsError, base) for base in (RuntimeError, QRNNError)]
    [True, True]
    """


class InsufficientShotsWarning(UserWarning):
    """Too few shots survived a shot run's postselections to estimate some step: those steps are
    NaN; the message gives the survivors per step and the shots needed.

    **Example**

    Turn it into an error for a whole block of code with the standard ``warnings`` filters:

    >>> import warnings
    >>> from pennylane_qrnn.errors import InsufficientShotsWarning
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", InsufficientShotsWarning)
    ...     try:
    ...         warnings.warn("step 3: 0 of 100 shots survived", InsufficientShotsWarning)
    ...     except InsufficientShotsWarning as warning:
    ...         print("refused:", warning)
    refused: step 3: 0 of 100 shots survived
    """


class DataNotFoundError(QRNNError, FileNotFoundError):
    """A dataset's files are not where the task was told to look (or it was told nowhere); the
    message names the files expected, the folder searched and where to get them.

    Also a ``FileNotFoundError``.

    **Example**

    >>> import tempfile
    >>> from pennylane_qrnn.errors import DataNotFoundError
    >>> from pennylane_qrnn.tasks import MNISTPixels
    >>> with tempfile.TemporaryDirectory() as empty:
    ...     try:
    ...         MNISTPixels((0, 1), folder=empty).batch(1)
    ...     except DataNotFoundError as error:
    ...         print(str(error)[:61])
    MNIST folder must hold mnist-simple-D-SPLIT.csv.gz files (set
    """
