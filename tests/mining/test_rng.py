import threading
import urllib.request

import pytest
from django.test import Client

from mining.rng import views

pytestmark = pytest.mark.urls("mining.rng.urls")


@pytest.fixture(autouse=True)
def no_delay(settings):
    settings.RNG_DELAY = 0


def test_rng_answers_the_requested_number_of_random_bytes(client: Client):
    response = client.get("/32")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert len(response.content) == 32
    assert response["Content-Length"] == "32"


def test_rng_answers_different_bytes_each_time(client: Client):
    assert client.get("/32").content != client.get("/32").content


@pytest.mark.parametrize("count", [1, 1024])
def test_rng_accepts_counts_from_1_to_1024(client: Client, count: int):
    assert len(client.get(f"/{count}").content) == count


@pytest.mark.parametrize(
    "count", ["0", "1025", "-5", "99999999999999999999", "9" * 5000]
)
def test_rng_rejects_a_count_outside_1_to_1024(client: Client, count: str):
    response = client.get(f"/{count}")

    assert response.status_code == 400
    assert response.content == b"n must be between 1 and 1024\n"


@pytest.mark.parametrize(
    "count",
    ["abc", "3.5", "1e3", "0x10", "%20", "%C2%B2", "%D9%A3", "%E2%91%A0", "1%0A"],
)
def test_rng_rejects_a_count_that_is_not_a_number(client: Client, count: str):
    response = client.get(f"/{count}")

    assert response.status_code == 400
    assert response.content == b"not a number\n"


def test_rng_reads_leading_zeros_beyond_pythons_digit_limit(client: Client):
    assert len(client.get("/" + "0" * 5000 + "7").content) == 7


def test_rng_says_where_it_runs(client: Client):
    response = client.get("/")

    assert response.status_code == 200
    assert response.content.decode().startswith("RNG running on ")


def test_rng_answers_head_requests_for_httping(client: Client):
    assert client.head("/").status_code == 200


def test_rng_refuses_other_methods(client: Client):
    assert client.post("/32").status_code == 405


def test_rng_serves_one_request_at_a_time(monkeypatch, settings):
    settings.RNG_DELAY = 0.01
    inside, most_inside = 0, 0
    lock = threading.Lock()

    def slow_device(seconds: float) -> None:
        nonlocal inside, most_inside
        with lock:
            inside += 1
            most_inside = max(most_inside, inside)
        threading.Event().wait(seconds)
        with lock:
            inside -= 1

    monkeypatch.setattr(views.time, "sleep", slow_device)
    threads = [threading.Thread(target=views.draw, args=(8,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert most_inside == 1


def test_rng_says_where_it_runs_only_when_its_turn_comes(client: Client):
    # httping probes `GET /` (workshop step 3): under load it must queue
    # behind the draws like any request, as the classic single-threaded rng.
    answered = threading.Event()

    def probe() -> None:
        client.get("/")
        answered.set()

    with views._device:  # a draw in progress
        thread = threading.Thread(target=probe)
        thread.start()
        assert not answered.wait(0.3)
    assert answered.wait(10)
    thread.join(timeout=10)


def test_rng_takes_rng_delay_per_request(monkeypatch, settings):
    settings.RNG_DELAY = 0.25
    slept = []
    monkeypatch.setattr(views.time, "sleep", slept.append)

    views.draw(32)

    assert slept == [0.25]


def test_rng_is_served_by_the_rng_role(pipeline):
    with urllib.request.urlopen(pipeline.rng_url + "/16", timeout=5) as response:
        assert len(response.read()) == 16
