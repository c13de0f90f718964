"""A master's fleet record (fleet/record.py) from either form of its status:
each worker listed (a full status) or the pools' counts by state (what the
advertiser asks for, every 2 s)."""

from resqued.fleet import record

SETTINGS = {"host": "h", "master_pid": 1, "version": "v", "config": "/p.yml", "digest": "d", "started": 0.0}


def pool(queues, **extra):
    return {"queues": queues, "count": 2, "alive": 2, "failed": False, **extra}


def test_the_same_record_from_workers_listed_or_counted_by_state():
    full = {"master": {"state": "running", "worker_count": 5}, "pools": [pool(["mail"]), pool(["default"])],
            "workers": [{"queues": ["mail"], "state": "busy"}, {"queues": ["mail"], "state": "idle"},
                        {"queues": ["default"], "state": "idle"}, {"queues": ["default"], "state": "idle"}]}
    brief = {"master": {"state": "running", "worker_count": 5}, "workers": [],
             "pools": [pool(["mail"], states={"idle": 1, "busy": 1}), pool(["default"], states={"idle": 2})]}
    a, b = record.build(SETTINGS, full), record.build(SETTINGS, brief)
    del a["seen"], b["seen"]
    assert a == b
    # Five: one more retires from a pool the last reload removed (in no pool's count).
    assert a["workers"] == 5 and a["pools"][0]["states"] == {"busy": 1, "idle": 1}
    del full["master"]["worker_count"]   # an older master's answer: its workers listed
    assert record.build(SETTINGS, full)["workers"] == 4


def test_a_master_that_did_not_answer():
    built = record.build(SETTINGS, None)
    assert built["state"] == "not answering" and built["workers"] == 0 and built["pools"] == []
