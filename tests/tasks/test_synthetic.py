"""The synthetic tasks: shapes, token ranges, determinism and labels checked independently."""

import pytest
import torch

from pennylane_qrnn.tasks import (
    DNA,
    RENAMED_TASKS,
    TASKS,
    VARIANTS,
    ElmanLetters,
    ElmanXOR,
    Memorisation,
    get_task,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "name", ["memorise", "memorise-rvqe", "elman-xor", "elman-letters", "dna", "dna-rvqe"]
)
def test_shapes_ranges_determinism(name):
    task = get_task(name)
    a, b = task.batch(5, _gen(1)), task.batch(5, _gen(1))
    assert a.tokens.shape == a.targets.shape == a.scored.shape == (task.length, 5)
    for t in (a.tokens, a.targets):
        assert t.dtype == torch.long and t.min() >= 0 and t.max() < task.vocabulary_size
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.targets, b.targets)
    assert a.scored.any()


def test_memorisation_sequences():
    batch = Memorisation(length=7).batch(4)
    assert batch.tokens[:, 0].tolist() == [4] * 7
    assert batch.tokens[:, 1].tolist() == [1, 2, 3, 1, 2, 3, 1]
    assert batch.targets[:, 1].tolist() == [2, 3, 1, 2, 3, 1, 2]
    assert torch.equal(batch.tokens[:, 2], batch.tokens[:, 0])
    ref = Memorisation(length=5, variant="rvqe").batch(2)
    assert ref.tokens[:, 1].tolist() == [0, 1, 2, 3, 0]


def test_elman_xor_labels():
    batch = ElmanXOR(length=30).batch(16, _gen(3))
    tokens, targets, scored = batch.tokens, batch.targets, batch.scored
    for n in range(16):
        for t in range(30):
            position = t + 1  # the target of step t is element t + 1 of the sequence
            if position % 3 == 2:
                assert scored[t, n]
                assert targets[t, n] == tokens[t, n] ^ tokens[t - 1, n]
            else:
                assert not scored[t, n] and targets[t, n] == 2
    assert torch.equal(batch.forced, ~scored)


def test_elman_letters_labels():
    batch = ElmanLetters(length=40).batch(3, _gen(2))
    vowels = {4: 0, 5: 1, 6: 2}
    sizes = {4: 1, 5: 2, 6: 3}
    for n in range(3):
        sequence = batch.tokens[:, n].tolist() + [None]
        t = 0
        while t < 40:
            consonant = sequence[t]
            assert consonant in vowels
            for k in range(1, sizes[consonant] + 1):
                if t + k - 1 < 40:
                    assert batch.targets[t + k - 1, n] == vowels[consonant]
            t += sizes[consonant] + 1
            if t - 1 < 40:
                assert batch.targets[t - 1, n] == 7


@pytest.mark.parametrize("length", [10, 100, 1000])
def test_dna_paper_variant(length):
    batch = DNA(length=length).batch(64, _gen(length))
    for n in range(64):
        column = batch.tokens[:, n]
        markers = (column == 4).nonzero().flatten().tolist()
        assert len(markers) == 1 and 1 <= markers[0] < (length + 1) // 2
        base = int(column[markers[0] + 1])
        assert 0 <= base < 4 and batch.labels[n] == base
        assert batch.targets[-1, n] == base and batch.targets[:-1, n].eq(0).all()
    assert batch.scored[:-1].sum() == 0 and batch.scored[-1].all()


def test_dna_rvqe_variant():
    batch = DNA(length=50, variant="rvqe").batch(32, _gen(5))
    for n in range(32):
        column = batch.tokens[:, n]
        (marker,) = (column >= 4).nonzero().flatten().tolist()
        base = int(column[marker]) - 4
        assert batch.targets[-1, n] == base
        assert batch.targets[marker:, n].eq(base).all()  # revealed after the marker
        assert batch.targets[: marker - 1, n].eq(0).all()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: get_task("mnist99"), "task must be one of"),
        (lambda: DNA(length=1001), r"length must be an int in \[4, 1000\]; got 1001"),
        (lambda: DNA(variant="x"), r"variant must be one of \('paper', 'rvqe'\); got 'x'"),
        (lambda: ElmanXOR(length=2), "length must be an int >= 3; got 2"),
        (lambda: Memorisation().batch(0), "size must be an int >= 1; got 0"),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_former_names_still_work_with_a_future_warning():
    """The reference implementation's variants were called "reference"; they are "rvqe" now. The
    former task names and variant name still build the same task, with a FutureWarning."""
    assert VARIANTS == ("paper", "rvqe")
    for old, new in RENAMED_TASKS.items():
        assert new in TASKS and old not in TASKS
        with pytest.warns(FutureWarning, match=f"task '{old}' is deprecated.*pass '{new}'"):
            task = get_task(old, length=8)
        assert task.variant == "rvqe"
        assert torch.equal(
            task.batch(3, _gen(2)).tokens, get_task(new, length=8).batch(3, _gen(2)).tokens
        )
    for cls in (Memorisation, DNA):
        with pytest.warns(FutureWarning, match="variant='reference' is deprecated.*'rvqe'"):
            assert cls(length=8, variant="reference").variant == "rvqe"


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: DNA(length=True), TypeError),
        (lambda: DNA(length=5.0), TypeError),
        (lambda: Memorisation(length="5"), TypeError),
        (lambda: Memorisation(variant=1), ValueError),
        (lambda: ElmanXOR().batch(2.0), TypeError),
    ],
)
def test_types_are_type_errors(call, error):
    with pytest.raises(error):
        call()
