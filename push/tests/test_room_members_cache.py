"""The room members read for evaluation are kept per room state and account-data
position (push.actions.notifications.room_members). Every evaluation, unread-count and
shared-notification test runs again here with every room cached, so that a membership,
display name, push rule or ignore list change is seen by the very next event."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.db import connection
from django.test.utils import CaptureQueriesContext

from push.actions import notifications
from push.tests.test_evaluation import EvaluationTests
from push.tests.test_notifications import NotificationsTests
from push.tests.test_shared_notifications import (
    SameCountsTests,
    SharedNotificationTests,
    SharedTestCase,
    SpanTests,
)
from push.tests.test_unread_counts import UnreadCountTests


def keep_every_room(test: Any) -> None:
    test.enterContext(mock.patch.object(notifications, "_CACHED_MIN_MEMBERS", 0))


def cached(cls: type) -> type:
    """``cls``'s tests with every room's members kept, whatever its size (from setUp on)."""

    def setUp(self: Any) -> None:
        keep_every_room(self)
        cls.setUp(self)

    return type(f"Cached{cls.__name__}", (cls,), {"__module__": __name__, "setUp": setUp})


CachedEvaluationTests = cached(EvaluationTests)
CachedNotificationsTests = cached(NotificationsTests)
CachedUnreadCountTests = cached(UnreadCountTests)
CachedSharedNotificationTests = cached(SharedNotificationTests)
CachedSameCountsTests = cached(SameCountsTests)
CachedSpanTests = cached(SpanTests)


class RoomMembersCacheTests(SharedTestCase):
    def setUp(self) -> None:
        keep_every_room(self)
        super().setUp()

    def member_reads(self) -> int:
        with CaptureQueriesContext(connection) as queries:
            self.message(self.bob)
        return sum("m.ignored_user_list" in q["sql"] for q in queries.captured_queries)

    def test_a_message_after_a_message_reads_no_members(self) -> None:
        self.member_reads()
        self.assertEqual(self.member_reads(), 0)

    def test_a_rule_change_reads_them_again(self) -> None:
        self.member_reads()
        self.api(self.members[0]).put(
            f"/_matrix/client/v3/pushrules/global/room/{self.room_id}", {"actions": []}
        )
        self.assertEqual(self.member_reads(), 1)
        self.assertEqual(self.member_reads(), 0)

    def test_a_join_is_read_with_the_join_and_counts_at_the_next_message(self) -> None:
        self.member_reads()
        late = self.make_user("late")
        self.join(late)
        self.member_reads()
        self.assertEqual(self.unread(late), {"main": (1, 0)})
