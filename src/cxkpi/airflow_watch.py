"""Model tasks that cost no worker: each dbt model's task starts and ends in the triggerer.

cosmos' watcher mode runs the night's dbt in one ``dbt build`` (the producer task) and
gives every model a sensor task that turns green or red when dbt reports the model. As
cosmos ships it, each sensor starts in a worker (then defers, then resumes in a worker):
on a real scheduler that is two task start-ups per model, about 1.2 s of CPU each here,
so 57 models cost more than the build itself (a 183 s night against 54 s in-process).

Here a model task starts in the triggerer (Airflow's ``start_from_trigger``) and, on its
first try, ends there as well (``TaskSuccessEvent``/``TaskFailedEvent``/``TaskSkippedEvent``):
polling the producer's reports is a coroutine in the triggerer, not a process. A retry or a
cleared task (try 2 and later) resumes in a worker, where cosmos' fallback runs that one
model with dbt: retrying or clearing a single model still rebuilds it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import (
    StartTriggerArgs,
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
)
from cosmos.listeners.dag_run_listener import EventStatus
from cosmos.operators._watcher.triggerer import WatcherEventReason, WatcherTrigger

# The worker-side fallback of cosmos' consumer sensors (execute_complete) runs the model
# with dbt when told that the producer did not run it.
RUN_THE_MODEL_ON_A_WORKER = {
    "status": EventStatus.FAILED,
    "reason": WatcherEventReason.PRODUCER_SKIPPED,
}


class ModelReportTrigger(WatcherTrigger):
    """cosmos' watcher trigger, reading the run from the task instance it was started
    for, and ending the task itself unless the model must run on a worker."""

    def __init__(
        self,
        model_unique_id: str,
        producer_task_id: str,
        dag_id: str,
        poke_interval: float = 1,
        run_id: str = "",
        map_index: int = -1,
        is_test_sensor: bool = False,
    ) -> None:
        super().__init__(
            model_unique_id=model_unique_id,
            producer_task_id=producer_task_id,
            dag_id=dag_id,
            run_id=run_id,
            map_index=map_index,
            poke_interval=poke_interval,
            is_test_sensor=is_test_sensor,
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{__name__}.{type(self).__name__}",
            {
                "model_unique_id": self.model_unique_id,
                "producer_task_id": self.producer_task_id,
                "dag_id": self.dag_id,
                "poke_interval": self.poke_interval,
                "run_id": self.run_id,
                "map_index": self.map_index,
                "is_test_sensor": self.is_test_sensor,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        ti = self.task_instance
        # started by the scheduler for one task instance: its run is this trigger's run
        self.run_id = ti.run_id
        self.map_index = ti.map_index
        if ti.try_number > 1:
            # a retry or a cleared task: rebuild the model on a worker
            yield TriggerEvent(RUN_THE_MODEL_ON_A_WORKER)
            return
        async for event in super().run():
            payload = event.payload
            status = payload.get("status")
            if status == EventStatus.SUCCESS and payload.get("reason") == (
                WatcherEventReason.NODE_NOT_RUN
            ):
                # the producer succeeded without running the model: a night with nothing
                # new, whose plan was no build (cxkpi.orchestration.follow_the_plan)
                yield TaskSkippedEvent()
            elif status == EventStatus.SUCCESS:
                yield TaskSuccessEvent()
            elif status == EventStatus.SKIPPED:
                yield TaskSkippedEvent()
            elif payload.get("reason") == WatcherEventReason.PRODUCER_SKIPPED:
                yield event
            else:
                self.log.error(
                    "dbt reported %s: %s (see the producer task's log)",
                    self.model_unique_id,
                    payload.get("reason"),
                )
                yield TaskFailedEvent()
            return


# The dbt events of a model that carry its outcome: NodeFinished (every node, run or
# skipped, ends with it) and the two that tell an upstream failure's skip (cosmos turns
# that skip into a failure). NodeStart/NodeCompiling/NodeExecuting and LogModelResult
# are only logged.
MODEL_OUTCOME_EVENTS = frozenset({"NodeFinished", "SkippingDetails", "LogSkipBecauseError"})


def report_models_only(producer: Any) -> None:
    """The producer reports each model once to XCom, and no data test.

    cosmos pushes XComs from dbt's event callback, each a call to the api-server: the
    event of every NodeStart/NodeCompiling/NodeExecuting/NodeFinished, and status and
    compiled SQL for every event with a final status (LogModelResult and NodeFinished),
    about 8 per model, and as many per data test. For 410 nodes a night's build took
    136 s under a real scheduler instead of 25 s. Here a model's outcome events
    (``MODEL_OUTCOME_EVENTS``) go to cosmos, 3 pushes per model; every other model line
    and every test line is only written to the producer's log. Nothing reads a test's
    XComs here (no task per test: a failing test fails the producer and the models below
    it)."""
    from cosmos.operators._watcher.base import _log_dbt_msg

    make_parse_callable = producer._make_parse_callable

    def make_model_parse_callable() -> Any:
        parse = make_parse_callable()

        def parse_model_lines(line: str, extra_kwargs: Any) -> None:
            try:
                log_line = json.loads(line)
            except ValueError:
                return parse(line, extra_kwargs)
            node_info = (log_line.get("data") or {}).get("node_info") or {}
            event = (log_line.get("info") or {}).get("name")
            if node_info.get("unique_id") and (
                node_info.get("resource_type") == "test" or event not in MODEL_OUTCOME_EVENTS
            ):
                _log_dbt_msg(log_line)
                return None
            return parse(line, extra_kwargs)

        return parse_model_lines

    producer._make_parse_callable = make_model_parse_callable


# How often a model task's trigger asks for its model's report (an XCom read through the
# api-server). At 1 s, 57 triggers kept the api-server busy on a 2-core machine and the
# producer's build ran 2.6x slower than in-process; a model task now turns green at most
# this long after dbt reports the model.
MODEL_POLL_SECONDS = 5.0


def make_model_tasks_cheap(tasks: list[Any], poke_interval: float = MODEL_POLL_SECONDS) -> int:
    """Make cosmos' watcher consumer tasks start (and usually end) in the triggerer, and
    its producer report only models; the number of model tasks changed."""
    from cosmos.operators._watcher.base import BaseConsumerSensor
    from cosmos.operators.watcher import DbtProducerWatcherOperator

    changed = 0
    for task in tasks:
        if isinstance(task, DbtProducerWatcherOperator):
            report_models_only(task)
        if not isinstance(task, BaseConsumerSensor):
            continue
        task.start_from_trigger = True
        task.start_trigger_args = StartTriggerArgs(
            trigger_cls=f"{__name__}.{ModelReportTrigger.__name__}",
            trigger_kwargs={
                "model_unique_id": task.model_unique_id,
                "producer_task_id": task.producer_task_id,
                "dag_id": task.dag_id,
                "poke_interval": poke_interval,
            },
            next_method="execute_complete",
            next_kwargs=None,
            timeout=None,
        )
        changed += 1
    return changed
