"""Multi-card and multi-node pass-through of mk/docker.mk: NPROC, NNODES, NODE_RANK, MASTER_ADDR/PORT,
every selected card mounted, HCCL timeouts, host networking across nodes."""

from __future__ import annotations

from test_docker_make import IMAGE_A100, IMAGE_NPU, docker_run, dry, inner, make, pairs

TORCHRUN = ["python", "-m", "torch.distributed.run"]


def launcher_flags(command: list[str]) -> dict[str, str]:
    head = command[:command.index("-m", 3)]
    return dict(zip(head[3::2], head[4::2]))


def test_run_npu_nproc_8_mounts_all_eight_cards_and_launches_eight_processes():
    argv = docker_run(dry("run-npu", "NPROC=8"))
    assert pairs(argv, "--device")[:8] == [f"/dev/davinci{card}" for card in range(8)]
    command = inner(argv, IMAGE_NPU)
    assert command[:3] == TORCHRUN
    assert launcher_flags(command) == {"--nnodes": "1", "--node_rank": "0", "--nproc_per_node": "8",
                                       "--master_addr": "127.0.0.1", "--master_port": "29500"}
    assert command[command.index("-m", 3):][:2] == ["-m", "recipe.finetune"]
    env = pairs(argv, "-e")
    assert "HCCL_CONNECT_TIMEOUT=1200" in env and "HCCL_EXEC_TIMEOUT=1800" in env
    assert "--network" not in argv   # one node: the bridge network is enough


def test_nproc_follows_the_chosen_cards():
    argv = docker_run(dry("run-npu", "DEVICES=4,5,6,7", "HCCL_CONNECT_TIMEOUT=1800"))
    assert pairs(argv, "--device")[:4] == ["/dev/davinci4", "/dev/davinci5", "/dev/davinci6", "/dev/davinci7"]
    assert launcher_flags(inner(argv, IMAGE_NPU))["--nproc_per_node"] == "4"
    assert "HCCL_CONNECT_TIMEOUT=1800" in pairs(argv, "-e")


def test_one_card_runs_plain_python():
    assert inner(docker_run(dry("run-a100")), IMAGE_A100)[:3] == ["python", "-m", "recipe.finetune"]


def test_multi_node_uses_the_rendezvous_and_host_networking():
    argv = docker_run(dry("run-a100", "NPROC=4", "NNODES=2", "NODE_RANK=1", "MASTER_ADDR=10.1.2.3",
                          "MASTER_PORT=29600", NCCL_SOCKET_IFNAME="eth0", GLOO_SOCKET_IFNAME="eth0"))
    assert pairs(argv, "--gpus") == ['"device=0,1,2,3"']
    assert launcher_flags(inner(argv, IMAGE_A100)) == {"--nnodes": "2", "--node_rank": "1",
                                                       "--nproc_per_node": "4", "--master_addr": "10.1.2.3",
                                                       "--master_port": "29600"}
    assert pairs(argv, "--network") == ["host"]
    assert {"NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME"} <= set(pairs(argv, "-e"))


def test_nproc_that_does_not_match_the_cards_stops_before_docker():
    done = make("run-npu", "DRY_RUN=1", "NPROC=3", "DEVICES=0,1")
    assert done.returncode != 0
    assert "NPROC=3 but DEVICES=0,1 lists 2 card(s)" in done.stderr
    assert "docker run" not in done.stdout
