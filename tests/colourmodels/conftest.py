import pytest
import torch


@pytest.fixture(scope="module")
def one_cpu_thread():
    """Tiny networks on a small, shared CPU: one intra-op thread avoids OpenMP
    oversubscription (which made these tests up to 50 times slower under load)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
