"""The caretaker console: the queue, a conversation, its actions and the live event stream."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from bot.models import StaffUser
from handoff.auth import current_staff
from handoff.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/console")
async def queue_page(request: Request, staff: StaffUser = Depends(current_staff)) -> Response:  # noqa: B008
    return render(request, "queue.html", {"items": []})
