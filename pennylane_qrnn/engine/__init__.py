r"""The exact simulation engine: batched, differentiable torch maths for whole QRNN sequences.

It computes exactly what the templates' circuits compute (tests pin the two together), but it
exploits the model's structure instead of simulating gate by gate:

* every amplitude is real (RY rotations, X gates and the neurons' real maps), so the state is a
  real tensor;
* a neuron on a basis control state acts on its target by the 2x2 map ``[[C, -S], [S, C]]``
  (:func:`pennylane_qrnn.neuron.neuron_amplitudes`, or the rotation by ``f(eta)`` in amplified
  mode); the whole table over the control states is computed once per forward pass;
* the neurons' renormalisations are per-sample scalars and everything else is linear, so they are
  deferred to the end of each step. Between steps the i/o lanes are measured and reset, so the
  state lives on the workspace alone (``2**H`` amplitudes). One step is then two fixed matrices:
  ``v = W[x] psi`` (write token ``x``, input and work stages, reset) and ``u = O v`` (output
  stage), where ``u[y]`` is the unnormalised workspace state if the i/o lanes read ``y``.
  ``p(y) = |u[y]|^2 / sum_y' |u[y']|^2`` and the next state is ``u[y] / |u[y]|``. A step may
  skip its output stage (``skip_output``): nothing is read, and the next state is ``v / |v|``.

``W`` and ``O`` are built once per forward pass by running the cell on basis states, so a training
step costs two small matrix products per sequence step for the whole batch.

Numerical range. The unnormalised neuron maps shrink like ``2**(-2**order / 2)`` per neuron, and
a cell multiplies many of them: in float32 the true amplitudes underflow from order 4 or 5. Since
every probability and state the engine returns is invariant under a positive factor on ``W[x]``
(for each token ``x``), on ``O``, on ``v`` and on ``u``, the engine divides each of them by a
factor that keeps its largest entry near 1 and keeps the factors' logarithms
(:attr:`CellOperators.log_write_scale`, :attr:`CellOperators.log_output_scale`) for the neurons'
success probabilities (:attr:`SequenceResult.log_neuron_success`). The factors are constants for
autograd, which is exact: a function that is invariant under a scale has no gradient along it.
Where even then nothing survives (every branch of a step below the smallest float), the step's
log-probabilities are NaN and a :class:`NumericalRangeWarning` says so: never a made-up uniform
distribution.

Modules: :mod:`~pennylane_qrnn.engine.operators` (``W`` and ``O`` from the weights),
:mod:`~pennylane_qrnn.engine.recurrence` (the steps and their hand-written backward pass),
:mod:`~pennylane_qrnn.engine.sequence` (:func:`run_sequence` and its result),
:mod:`~pennylane_qrnn.engine.outcomes` (the outcome of each step, skipped output stages),
:mod:`~pennylane_qrnn.engine.checks` (non-finite inputs, :class:`NumericalRangeWarning`),
:mod:`~pennylane_qrnn.engine.transforms` (``torch.compile`` and ``torch.func``: what is traced,
the ``vmap`` rules), and the statevector engine (:mod:`~pennylane_qrnn.engine.statevector`,
:mod:`~pennylane_qrnn.engine.sweep`).
"""

from ..layout import CellLayout
from .checks import NumericalRangeWarning, check_finite
from .operators import CellOperators, build_operators
from .outcomes import NOT_MEASURED
from .sequence import SequenceResult, run_sequence
from .sequence import initial_state as initial_state  # public as before, outside __all__

__all__ = [
    "CellLayout",
    "CellOperators",
    "SequenceResult",
    "NumericalRangeWarning",
    "NOT_MEASURED",
    "build_operators",
    "run_sequence",
    "check_finite",
]
