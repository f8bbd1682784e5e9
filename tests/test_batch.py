import pytest
import torch

from gpt_from_scratch.data import get_batch, prepare_data


@pytest.fixture(scope="module")
def train(text):
    return prepare_data(text)[1]


def test_shapes_and_dtype(train):
    x, y = get_batch(train, batch_size=4, block_size=8)
    assert x.shape == (4, 8) and y.shape == (4, 8)
    assert x.dtype == torch.long and y.dtype == torch.long
    assert x.device.type == "cpu" and y.device.type == "cpu"


def test_y_is_x_shifted_by_one_token():
    data = torch.arange(1000)
    x, y = get_batch(data, batch_size=16, block_size=32, generator=torch.Generator().manual_seed(1))
    start = x[:, :1]
    assert torch.equal(x, start + torch.arange(32))  # contiguous windows
    assert torch.equal(y, x + 1)
    assert int(x.min()) >= 0 and int(y.max()) <= 999


def test_windows_match_the_data(train):
    g1 = torch.Generator().manual_seed(123)
    x, y = get_batch(train, 8, 16, generator=g1)
    ix = torch.randint(len(train) - 16, (8,), generator=torch.Generator().manual_seed(123))
    for b, i in enumerate(ix.tolist()):
        assert torch.equal(x[b], train[i:i + 16])
        assert torch.equal(y[b], train[i + 1:i + 17])


def test_seeded_generator_is_deterministic(train):
    a = get_batch(train, 4, 8, generator=torch.Generator().manual_seed(0))
    b = get_batch(train, 4, 8, generator=torch.Generator().manual_seed(0))
    c = get_batch(train, 4, 8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_smallest_possible_data():
    data = torch.tensor([5, 6, 7, 8], dtype=torch.uint8)
    x, y = get_batch(data, 3, 3)
    assert x.dtype == torch.long
    assert x.tolist() == [[5, 6, 7]] * 3 and y.tolist() == [[6, 7, 8]] * 3


@pytest.mark.parametrize("n", [0, 3, 8])
def test_too_short_data_raises(n):
    with pytest.raises(ValueError, match="block_size"):
        get_batch(torch.arange(n), 2, 8)


def test_bad_sizes_raise():
    with pytest.raises(ValueError):
        get_batch(torch.arange(100), 0, 8)
    with pytest.raises(ValueError):
        get_batch(torch.arange(100).view(10, 10), 2, 4)
