"""`manage.py rollout COMMAND`: rollouts from the command line, like `kubectl rollout`.

Every change goes through `rollouts.records.requests`, exactly as the admin's do. Bad
input ends in one CommandError line, and nothing is sent to the swarm.
"""

import argparse
import logging
import signal
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.checks import Tags
from django.core.checks.registry import registry
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils import timezone

from rollouts.control import database, identity
from rollouts.control.outcome import recent_ends
from rollouts.control.rollback import rollback_destination
from rollouts.engine import nodes
from rollouts.engine.client import SwarmClient, SwarmError, SwarmUnreachable
from rollouts.engine.sync import service_sync
from rollouts.management.terminal import (
    RolloutRunner,
    add_desired_flags,
    describe_flags,
    desired_from_options,
    flag_type,
    format_table,
    one_line,
    one_line_parser,
)
from rollouts.models import KnownImage, Rollout, RolloutState, Service
from rollouts.records import describe, requests, selectors
from rollouts.spec import validation
from rollouts.spec.drift import drift_lines, service_drift
from rollouts.spec.fields import (
    BY_NAME,
    ParseError,
    parse_duration,
    parse_int,
    parse_service_name,
    parse_stack_name,
)
from rollouts.spec.specs import (
    desired_from_spec,
    expected_duration,
    parse_image,
    short_image,
    spec_diff,
)

log = logging.getLogger("rollouts")

ALIVE_FILE = "/tmp/controller-alive"


def _whole_number(text: str) -> int:
    try:
        return parse_int(text)
    except ParseError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


MAX_SYNC_INTERVAL = 3600.0  # seconds

# The fields a subcommand takes as positional arguments, by the name its usage
# line gives them: an error about one names that, not the field's --flag.
POSITIONAL_FIELDS = {"scale": {"replicas": "REPLICAS"}}


def _service_name(text: str) -> str:
    try:
        return parse_service_name(text)
    except ParseError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _stack_name(text: str) -> str:
    try:
        return parse_stack_name(text)
    except ParseError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _interval(text: str) -> float:
    """A positive duration in seconds ("10", "10s", "1m"), at most an hour."""
    try:
        seconds = parse_duration(text)
    except ParseError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    if seconds > MAX_SYNC_INTERVAL:
        raise argparse.ArgumentTypeError(f"{text!r} must be at most 1h")
    return seconds


class Command(BaseCommand):
    help = "Apply, watch, inspect and undo rollouts of the stack's swarm services."
    # Every Django system check but those of URLs, the admin and templates: they
    # import the whole URL configuration and every template tag library (the API
    # schema, every view: about 0.35 s of each command's start, a tenth of a
    # one-task `apply --wait`) for pages this command never serves. `manage.py
    # check` (make lint) and the webui's start still run them.

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requires_system_checks = [
            tag
            for tag in registry.tags_available()
            if tag not in (Tags.urls, Tags.admin, Tags.templates)
        ]

    def add_arguments(self, parser: CommandParser) -> None:
        one_line_parser(parser)  # before the subparsers, which inherit its class
        common = CommandParser(add_help=False)
        common.add_argument(
            "--stack",
            type=_stack_name,
            help="stack name (default: settings.STACK_NAME)",
        )
        change = CommandParser(add_help=False)
        change.add_argument(
            "--cause", default="", help="why (recorded with the change)"
        )
        change.add_argument("--user", help="attribute the change to this Django user")
        change.add_argument(
            "--wait", action="store_true", help="follow the rollout to its end"
        )
        change.add_argument(
            "--confirm-recreate",
            action="store_true",
            help="allow removing and re-creating the service for a mode change",
        )
        change.add_argument(
            "--resume",
            action="store_true",
            help="allow a change that resumes a paused failed update",
        )
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
        sub.add_parser("sync", parents=[common], help="import the stack's services")
        plan = sub.add_parser("plan", parents=[common], help="live vs desired spec")
        plan.add_argument("service", type=_service_name, metavar="SERVICE")
        apply = sub.add_parser(
            "apply", parents=[common, change], help="apply desired changes now"
        )
        apply.add_argument("services", nargs="*", metavar="SERVICE", type=_service_name)
        add_desired_flags(apply)
        sub.add_parser("status", parents=[common], help="services and rollouts")
        history = sub.add_parser("history", parents=[common], help="revisions")
        history.add_argument("service", type=_service_name, metavar="SERVICE")
        undo = sub.add_parser("undo", parents=[common, change], help="undo a change")
        undo.add_argument("service", type=_service_name, metavar="SERVICE")
        undo.add_argument("--to-revision", type=_whole_number)
        rollback = sub.add_parser(
            "rollback", parents=[common, change], help="the engine's rollback"
        )
        rollback.add_argument("service", type=_service_name, metavar="SERVICE")
        scale = sub.add_parser("scale", parents=[common, change], help="set replicas")
        scale.add_argument("service", type=_service_name, metavar="SERVICE")
        scale.add_argument(
            "replicas", type=flag_type(BY_NAME["replicas"]), metavar="REPLICAS"
        )
        abort = sub.add_parser(
            "abort", parents=[common], help="stop following a rollout in flight"
        )
        abort.add_argument("service", type=_service_name, metavar="SERVICE")
        abort.add_argument("--cause", required=True, help="why (recorded)")
        abort.add_argument("--user", help="attribute the abort to this Django user")
        promote = sub.add_parser(
            "promote", parents=[common], help="let a held canary's update go on"
        )
        promote.add_argument("service", type=_service_name, metavar="SERVICE")
        promote.add_argument("--cause", required=True, help="why (recorded)")
        promote.add_argument("--user", help="attribute it to this Django user")
        adopt = sub.add_parser(
            "adopt", parents=[common], help="take what runs as the desired spec"
        )
        adopt.add_argument("service", type=_service_name, metavar="SERVICE")
        adopt.add_argument("--cause", default="", help="why (recorded)")
        adopt.add_argument("--user", help="attribute it to this Django user")
        reapply = sub.add_parser(
            "reapply", parents=[common, change], help="re-apply ours over drift"
        )
        reapply.add_argument("service", type=_service_name, metavar="SERVICE")
        controller = sub.add_parser(
            "controller", parents=[common], help="apply and watch rollouts, forever"
        )
        controller.add_argument(
            "--sync-interval",
            type=_interval,
            default=10.0,
            metavar="DURATION",
            help="how often to re-read the swarm, more than 0 up to 1h (default 10s)",
        )
        controller.add_argument("--alive-file", default=ALIVE_FILE)

    def handle(self, *args: Any, **options: Any) -> None:
        self.options = options
        self.stack = options.get("stack")
        self._client: SwarmClient | None = None
        logger = logging.getLogger("rollouts")
        level = logger.level
        if options["subcommand"] != "controller" and options["verbosity"] < 2:
            logger.setLevel(logging.WARNING)  # the command prints the events itself
        try:
            getattr(self, f"do_{options['subcommand']}")()
        except ValidationError as error:
            positional = POSITIONAL_FIELDS.get(options["subcommand"])
            raise CommandError(one_line(error, positional)) from None
        except (Service.DoesNotExist, SwarmError, ImproperlyConfigured) as error:
            raise CommandError(str(error)) from None
        except DatabaseError as error:
            raise CommandError(database.describe(error)) from None
        finally:
            logger.setLevel(level)

    @property
    def client(self) -> SwarmClient:
        """The engine, for the subcommands that drive (this is the controller's
        process, or a command line with the socket): built on first use."""
        if self._client is None:
            self._client = SwarmClient()
        return self._client

    def sync(self) -> list[Service]:
        return service_sync(
            stack=self.stack, client=self.client, images=self._images_named()
        )

    def _images_named(self) -> list[str] | None:
        """The one image an `apply SERVICE --image-tag ...` of a known service
        names: the sync then refreshes only its tag (rollouts.engine.sync),
        which is all the apply's validation and revision need. None: the
        whole inventory (any other subcommand, a new service)."""
        desired = desired_from_options(self.options)
        names = self.options.get("services") or []
        if self.options["subcommand"] != "apply" or len(names) != 1:
            return None
        if not {"image", "tag"} & desired.keys():
            return None
        try:
            service = self.service(names[0])
        except Service.DoesNotExist:
            return None
        image = desired.get("image") or service.image
        reference = f"{image}:{desired.get('tag') or service.tag}"
        if parse_image(reference) is None:
            return None  # the validation's own words refuse it, not the engine's
        return [reference]

    def synced(self, name: str | None = None) -> Service:
        """The service `name` (default: the SERVICE argument) as it runs now:
        found (imported when new), then synced with the swarm, so that a
        request is judged against what runs. Every change starts here."""
        name = self.options["service"] if name is None else name
        return self.synced_all([name])[0]

    def synced_all(self, names: list[str]) -> list[Service]:
        """synced() for several names at once (one sync); no names: every
        service of the stack that still exists."""
        synced = False
        for name in names:
            synced = self.find(name) or synced
        if not synced:  # a name unknown until now was synced by find()
            self.sync()
        return [self.service(name) for name in names] or list(
            selectors.service_list(stack=self.stack).filter(missing=False)
        )

    def request(self, make: Callable[[Service, User | None], Rollout]) -> None:
        """The one path of a change: the --user first (input before the engine),
        the service as it runs, the request (its function in
        rollouts.records.requests decides), then the rollout run."""
        user = self.user()
        self.run_rollouts([make(self.synced(), user)])

    def find(self, name: str) -> bool:
        """Make sure the service `name` is known: looked up in the database
        first and, when unknown there, in the swarm (a `rollout sync`, and then
        True); Service.DoesNotExist when neither has it. With the engine
        unreachable, an unknown name is still reported as unknown."""
        try:
            self.service(name)
            return False
        except Service.DoesNotExist as unknown:
            try:
                self.sync()
            except SwarmUnreachable as error:
                raise CommandError(f"{unknown} ({error})") from None
            self.service(name)
            return True

    def say(self, line: str = "") -> None:
        self.stdout.write(line)

    def service(self, name: str | None = None) -> Service:
        """The service `name` (default: the SERVICE argument) as recorded."""
        name = self.options["service"] if name is None else name
        return selectors.service_get(name=name, stack=self.stack)

    def user(self) -> User | None:
        name = self.options.get("user")
        if not name:
            return None
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            raise CommandError(f"no Django user {name!r}")
        return user

    def cause(self, default: str) -> str:
        return self.options.get("cause") or default

    # --- read-only ----------------------------------------------------------------

    def do_sync(self) -> None:
        rows = self.sync()
        stack = self.stack or settings.STACK_NAME
        self.say(f"stack {stack}: {len(rows)} services")
        for row in rows:
            self.say(
                f"  {row.name}: {short_image(row.live_image)}, "
                f"{row.live_running}/{row.live_desired} running"
            )
        images = KnownImage.objects.values_list("reference", flat=True)
        self.say(f"images on the engine: {', '.join(images) or 'none'}")

    def do_plan(self) -> None:
        service = self.synced()
        if service.missing:
            raise CommandError(f"service {service.name} no longer exists in the swarm")
        live = desired_from_spec(service.live_spec)
        desired = service.desired_spec()
        rebuilt = self._rebuilt_rows(service, desired)
        rows = spec_diff(live, desired) + rebuilt
        drifted = self._say_drift(service)  # last applied vs live
        if not rows and drifted:
            # Exit 1 as documented for drift: say why, never "matches".
            self.say(
                f"{service.name}: applying changes nothing (the desired spec is "
                "what runs), but what runs differs from what we last applied "
                "(the drift above): `rollout adopt` or `rollout reapply` settles it"
            )
            self._say_rollback(service)
            raise SystemExit(1)
        if not rows:
            self.say(f"{service.name}: the live spec matches the desired spec")
            self._say_rollback(service)
            return
        self.say(f"{service.name}: {len(rows)} difference(s), live -> desired")
        for label, old, new in rows:
            self.say(f"  {label}: {old} -> {new}")
        tasks = service.live_desired
        took = expected_duration(live, desired, tasks, rebuilt=bool(rebuilt))
        self.say(f"expected duration: {took}")
        active = selectors.rollout_active_for(service=service)
        if active is not None:
            self.say(f"rollout #{active.pk} is {active.state}")
        self._say_rollback(service)
        raise SystemExit(1)

    def _rebuilt_rows(
        self, service: Service, desired: dict[str, Any]
    ) -> list[tuple[str, str, str]]:
        """The same tag, rebuilt: the tasks run another build than it names
        now (rollouts.control.identity); applying re-creates them."""
        reference = f"{desired['image']}:{desired['tag']}"
        try:
            image = self.client.image(reference)
            live = self.client.inspect(service.name)
            if image is None or live.short_image != reference:
                return []
            stale = identity.other_builds(
                self.client, self.client.tasks(live.id), image.image_id
            )
        except SwarmError:
            return []
        if not stale:
            return []
        return [
            (
                "image build",
                f"{reference} ({', '.join(sorted(set(stale)))})",
                f"{reference} ({image.image_id[7:19]}, rebuilt: applying "
                "re-creates every task)",
            )
        ]

    def _say_rollback(self, service: Service) -> None:
        """Where `rollout rollback` would go (rollouts.control.rollback)."""
        try:
            live = self.client.inspect(service.name)
        except SwarmError:
            return
        self.say(rollback_destination(service, live))

    def _say_drift(self, service: Service) -> bool:
        found = service_drift(service)
        if found:
            when = found.get("updated_at")
            at = f" (written at {when:%Y-%m-%d %H:%M:%S} UTC)" if when else ""
            self.say(
                f"{service.name}: drift, changed outside since we last applied"
                f"{at}; `rollout adopt` takes it, `rollout reapply` writes ours "
                "back. Applied -> live:"
            )
            for line in drift_lines(found):
                self.say(f"  {line}")
        return bool(found)

    def _say_recent_ends(self, service: Service) -> None:
        since = timezone.now() - timedelta(minutes=10)
        ended = recent_ends(service.live_tasks, since=since)
        if ended:
            self.say(
                f"{service.name}: {len(ended)} task(s) ended in the last 10 minutes "
                f"(Swarm restarts them): {'; '.join(ended[:5])}"
            )

    def _say_unplaced(self, service: Service) -> None:
        unplaced = describe.unplaced_in_tasks(service.live_tasks)
        if unplaced:
            self.say(
                f"{service.name}: {len(unplaced)} task(s) cannot be placed on any "
                f"node: {'; '.join(unplaced[:5])}"
            )

    def _say_held(self, service: Service) -> None:
        active = selectors.rollout_active_for(service=service)
        held = describe.held_line(active) if active is not None else None
        if held:
            self.say(held)

    def do_abort(self) -> None:
        rollout = requests.rollout_abort(
            service=self.service(), user=self.user(), cause=self.options["cause"]
        )
        self.say(f"{rollout.service.name}: rollout #{rollout.pk} {rollout.reason}")

    def do_promote(self) -> None:
        rollout = requests.rollout_promote(
            service=self.service(), user=self.user(), cause=self.options["cause"]
        )
        self.say(
            f"{rollout.service.name}: rollout #{rollout.pk} will be promoted by its "
            "driver at its next step"
        )

    def do_adopt(self) -> None:
        revision = requests.service_adopt(
            service=self.synced(), user=self.user(), change_cause=self.cause("")
        )
        self.say(
            f"{revision.service.name}: adopted what runs as revision {revision.number}"
        )

    def do_reapply(self) -> None:
        self.request(
            lambda service, user: requests.service_reapply(
                service=service,
                user=user,
                change_cause=self.cause(""),
                resume_confirmed=self.options["resume"],
            )
        )

    def do_status(self) -> None:
        try:
            self.sync()
        except SwarmUnreachable as error:
            self.stderr.write(f"{error}: showing the last recorded state")
        rows = []
        for service in selectors.service_list(stack=self.stack):
            active = selectors.rollout_active_for(service=service)
            rollout = "-"
            if active is not None:
                done = f"{active.tasks_done}/{active.tasks_total}"
                rollout = f"#{active.pk} {active.state} {done}"
            rows.append(
                [
                    service.name + (" (missing)" if service.missing else ""),
                    short_image(service.live_image),
                    service.live_mode,
                    f"{service.live_running}/{service.live_desired}",
                    service.live_update_state or "-",
                    rollout,
                ]
            )
        header = ["SERVICE", "IMAGE", "MODE", "RUNNING", "UPDATE", "ROLLOUT"]
        self.say(format_table(header, rows))
        for service in selectors.service_list(stack=self.stack):
            self._say_drift(service)
            self._say_recent_ends(service)
            self._say_unplaced(service)
            self._say_held(service)
        self._say_nodes(selectors.service_list(stack=self.stack))

    def _say_nodes(self, service_rows: Iterable[Service]) -> None:
        """Where every current task runs, and which nodes are down."""
        try:
            down = nodes.describe_down(self.client.nodes())
        except SwarmError:
            down = ""
        self.say("")
        self.say(
            format_table(
                ["TASK", "NODE", "STATE", "IMAGE"], describe.task_rows(service_rows)
            )
        )
        if down:
            self.say(f"nodes down: {down}")

    def do_history(self) -> None:
        service = self.service()
        revisions = service.revisions.select_related("created_by").order_by("number")
        rows = [
            [
                str(r.number),
                f"{r.created_at:%Y-%m-%d %H:%M:%S}",
                r.created_by.username if r.created_by else "-",
                f"{r.spec['image']}:{r.spec['tag']}",
                r.spec["mode"]
                if r.spec["mode"] == "global"
                else str(r.spec["replicas"]),
                r.change_cause,
            ]
            for r in revisions
        ]
        self.say(f"{service.name} revisions:")
        self.say(
            format_table(["REV", "CREATED", "BY", "IMAGE", "TASKS", "CAUSE"], rows)
        )
        rollouts = service.rollouts.select_related("revision").order_by("requested_at")
        rows = [
            [
                f"#{r.pk}",
                r.kind,
                str(r.revision.number) if r.revision else "-",
                r.state,
                f"{r.requested_at:%Y-%m-%d %H:%M:%S}",
                _duration(r),
                r.reason or r.change_cause,
            ]
            for r in rollouts
        ]
        self.say("rollouts:")
        header = ["ROLLOUT", "KIND", "REV", "STATE", "REQUESTED", "TOOK", "REASON"]
        self.say(format_table(header, rows))

    # --- changes ------------------------------------------------------------------

    def do_apply(self) -> None:
        names = self.options["services"]
        desired = desired_from_options(self.options)
        if desired and len(names) != 1:
            raise CommandError(
                "field flags (--image-tag, ...) need exactly one SERVICE"
            )
        validation.validate_values(desired)  # bad input first, engine or not
        self.user()  # an unknown --user too
        rollouts = []
        for service in self.synced_all(names):
            if desired and "mode" in desired and desired["mode"] == "global":
                desired.setdefault("replicas", None)
            rollout = self._apply_one(service, desired)
            if rollout is not None:
                rollouts.append(rollout)
        if not rollouts:
            self.say("nothing to apply: every live spec matches its desired spec")
            return
        self.run_rollouts(rollouts)

    def _apply_one(self, service: Service, desired: dict) -> Rollout | None:
        active = selectors.rollout_active_for(service=service)
        if not desired and active is not None:
            return active
        if not desired and not spec_diff(
            desired_from_spec(service.live_spec), service.desired_spec()
        ):
            if self.options["services"]:
                self.say(f"{service.name}: the live spec matches the desired spec")
            return None
        flags = describe_flags(desired)
        return requests.service_change(
            service=service,
            user=self.user(),
            change_cause=self.cause(
                f"rollout apply {service.short_name} {flags}".strip()
            ),
            recreate_confirmed=self.options["confirm_recreate"],
            resume_confirmed=self.options["resume"],
            carry=list(desired),  # the flags given are the change
            **desired,
        )

    def do_undo(self) -> None:
        self.request(
            lambda service, user: requests.service_undo(
                service=service,
                user=user,
                to_revision=self.options["to_revision"],
                change_cause=self.options["cause"],
                recreate_confirmed=self.options["confirm_recreate"],
                resume_confirmed=self.options["resume"],
            )
        )

    def do_rollback(self) -> None:
        self.request(
            lambda service, user: requests.service_rollback(
                service=service,
                user=user,
                change_cause=self.cause(f"rollout rollback {service.short_name}"),
            )
        )

    def do_scale(self) -> None:
        validation.validate_values({"replicas": self.options["replicas"]})
        self.request(
            lambda service, user: requests.service_scale(
                service=service,
                user=user,
                replicas=self.options["replicas"],
                change_cause=self.options["cause"],
                resume_confirmed=self.options["resume"],
            )
        )

    # --- driving rollouts in-process ------------------------------------------

    def run_rollouts(self, rollouts: list[Rollout]) -> None:
        runner = RolloutRunner(self, rollouts, self.client)
        runner.start()
        if not self.options["wait"]:
            runner.release()
            failed = [r for r in rollouts if r.state == RolloutState.FAILED]
            if failed:
                raise CommandError(runner.summary(failed))
            self.say("the controller watches it from here; `rollout status` shows it")
            return
        runner.wait()

    # --- the controller ---------------------------------------------------------

    def do_controller(self) -> None:
        # Imported here, not above: prometheus_client and the controller loop
        # cost every other subcommand's start about 0.05 s for nothing.
        from dockercoins import metrics
        from rollouts.control.controller import Controller

        alive = Path(self.options["alive_file"])
        try:
            alive.touch()
        except OSError as error:
            raise CommandError(
                f"--alive-file {alive}: cannot write it ({error.strerror})"
            ) from None
        controller = Controller(
            client=self.client,
            stack=self.stack,
            sync_interval=self.options["sync_interval"],
        )
        signal.signal(signal.SIGTERM, controller.request_stop)
        signal.signal(signal.SIGINT, controller.request_stop)
        try:
            metrics.serve(settings.METRICS_PORT)
        except OSError as error:  # rollouts matter more than their figures
            self.stderr.write(
                f"metrics not served on port {settings.METRICS_PORT}: {error}"
            )
        controller.run(alive)


def _duration(rollout: Rollout) -> str:
    if rollout.started_at and rollout.finished_at:
        return f"{(rollout.finished_at - rollout.started_at).total_seconds():.1f}s"
    return "-"
