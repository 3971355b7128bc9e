"""Offline checks of template.yaml that the linters cannot make: what the schedules send."""

import json
import unittest
from pathlib import Path

from sam_template import REPO, transformed

FIXTURES = REPO / "tests" / "fixtures" / "events"


def schedule_input(resources: dict, function: str) -> str:
    """The Input of the one Scheduler schedule that targets `function`."""
    inputs = [
        r["Properties"]["Target"]["Input"]
        for r in resources.values()
        if r["Type"] == "AWS::Scheduler::Schedule"
        and r["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [function, "Arn"]}
    ]
    if len(inputs) != 1:
        raise AssertionError(f"expected one schedule targeting {function}, found {len(inputs)}")
    return inputs[0]


class SchedulesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.resources = transformed()["Resources"]

    def test_tick_is_the_scheduled_event_the_evaluator_reads(self):
        # Fill the Scheduler context attributes the way Scheduler does, with the fixture's values;
        # functions/evaluator/src/event.rs has a test that the fixture parses as a tick.
        fixture = json.loads((FIXTURES / "scheduler-tick.json").read_text())
        sent = schedule_input(self.resources, "EvaluatorFunction")
        for attribute, value in {
            "<aws.scheduler.execution-id>": fixture["id"],
            "<aws.scheduler.scheduled-time>": fixture["time"],
            "<aws.scheduler.schedule-arn>": fixture["resources"][0],
        }.items():
            self.assertIn(attribute, sent)
            sent = sent.replace(attribute, value)
        self.assertEqual(json.loads(sent), fixture)

    def test_daily_alarm_sync_sends_exactly_the_agreed_payload(self):
        sent = schedule_input(self.resources, "AlarmSyncFunction")
        self.assertEqual(json.loads(sent), {"capstan": "sync-alarms"})

    def test_alarm_sync_custom_resource_carries_hash_and_prefix(self):
        sync = self.resources["AlarmSync"]
        self.assertEqual(sync["Type"], "Custom::CapstanAlarmSync")
        self.assertEqual(
            sync["Properties"],
            {
                "ServiceToken": {"Fn::GetAtt": ["AlarmSyncFunction", "Arn"]},
                "PolicySetHash": {"Ref": "PolicySetHash"},
                "AlarmPrefix": {"Ref": "AlarmPrefix"},
            },
        )


if __name__ == "__main__":
    unittest.main()
