"""The caretaker console: the queue, a conversation, its actions and the live event stream."""

from __future__ import annotations

import inspect
import logging
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from bot.storage.models import ConversationState, Role, StaffUser
from bot.storage.store import CODE_MASK
from channels.media import redirectable
from handoff import actions
from handoff.auth import (
    MAX_DB_ID,
    DbId,
    can_act,
    can_see,
    csrf_protect,
    current_staff,
    runtime_of,
)
from handoff.canned import canned_replies, placeholder_values
from handoff.events import stream
from handoff.i18n import request_language, translate
from handoff.queue import (
    WAITING,
    closed_residences,
    load_alert_failures,
    load_attachment,
    load_conversation,
    load_queue,
    load_view,
)
from handoff.requests_console import late_context, request_card, request_facts
from handoff.templating import render

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

SMS_CHANNELS = {"sms"}  # WhatsApp goes through Twilio too, but is not cut into parts
Staff = Depends(current_staff)
Checked = Depends(csrf_protect)  # signed in, CSRF token verified


# -- queue --------------------------------------------------------------------------------


async def _queue_context(request: Request, staff: StaffUser) -> dict[str, Any]:
    rt = runtime_of(request)
    now = rt.clock()
    async with rt.db.session() as s:
        items = await load_queue(s, staff, now)
        oncall = await closed_residences(s, staff, now, ZoneInfo(rt.settings.timezone), rt.landlord)
        late = await late_context(s, staff, now, rt.settings.timezone)
        summaries = {i.conversation_id: i.summary for i in items}
        failures = await load_alert_failures(s, staff, summaries)
    return {"items": items, "oncall": oncall, "now": now, "alert_failures": failures, **late}


@router.get("/console")
async def queue_page(request: Request, staff: StaffUser = Staff) -> Response:
    return render(request, "queue.html", await _queue_context(request, staff))


@router.get("/console/api/queue")
async def queue_fragment(request: Request, staff: StaffUser = Staff) -> Response:
    return render(request, "_queue.html", await _queue_context(request, staff))


@router.get("/console/events")
async def events(request: Request, staff: StaffUser = Staff) -> Response:
    rt = runtime_of(request)
    return StreamingResponse(
        stream(request, rt, staff),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# -- one conversation ---------------------------------------------------------------------


async def _visible(request: Request, staff: StaffUser, conv_id: int) -> Any:
    rt = runtime_of(request)
    async with rt.db.session() as s:
        conv = await load_conversation(s, conv_id)
    if conv is None:
        raise HTTPException(status_code=404)
    if not can_see(staff, conv):
        raise HTTPException(status_code=403)
    return conv


async def _conversation_context(request: Request, staff: StaffUser, conv_id: int) -> dict[str, Any]:
    rt = runtime_of(request)
    conv = await _visible(request, staff, conv_id)
    lang = request_language(request)
    async with rt.db.session() as s:
        view = await load_view(s, conv)
        card = await request_card(s, rt, conv, lang)
        req_facts = (
            await request_facts(s, rt, view.request, conv, lang)
            if view.request is not None and card.get("track") is None
            else []
        )
        people = await actions.transfer_targets(s, conv, staff)
        values = await placeholder_values(
            s, rt, conv, view.tenant, card.get("track") or view.request, lang
        )
        failures = await load_alert_failures(s, staff, conversation_id=conv.id)
    acting = can_act(staff, conv)
    groups = [
        (role, [p for p in people if p.role == role])
        for role in (Role.CARETAKER.value, Role.ONCALL.value)
    ]
    waiting = conv.state in WAITING
    mine = conv.assigned_to == staff.id
    return {
        "v": view,
        "conv": conv,
        "now": rt.clock(),
        "tz": ZoneInfo(rt.settings.timezone),
        "can_act": acting,
        "can_take": acting and conv.state == ConversationState.QUEUED.value and not mine,
        "can_reply": acting and waiting and (mine or conv.assigned_to is None),
        "mine": mine,
        "is_sms": conv.channel in SMS_CHANNELS,
        "canned": canned_replies(
            rt.settings.data, staff_lang=lang, tenant_lang=conv.language, values=values
        ),
        "req_facts": req_facts,
        "transfer_groups": [(role, group) for role, group in groups if group],
        "transfer_oncall": any(p.role == Role.ONCALL.value for p in people),
        "mask": CODE_MASK,
        "nonce": uuid.uuid4().hex,
        "telegram_media": _telegram_download(rt) is not None,
        "alert_failures": failures,  # staff alerts about it that did not go (issue 19)
        **card,
        **_moved_error(request, lang),
    }


def _moved_error(request: Request, lang: str) -> dict[str, str]:
    """A refused move of the request card comes back as ?error=req.… (a redirect)."""
    key = request.query_params.get("error", "")
    if not key.startswith("req."):
        return {}
    return {"error": translate(lang, key, current=request.query_params.get("current", "?"))}


@router.get("/console/c/{conv_id}")
async def conversation_page(request: Request, conv_id: DbId, staff: StaffUser = Staff) -> Response:
    ctx = await _conversation_context(request, staff, conv_id)
    await actions.record_read(runtime_of(request), staff, conv_id)
    return render(request, "conversation.html", ctx)


@router.get("/console/api/c/{conv_id}/live")
async def conversation_fragment(
    request: Request, conv_id: DbId, staff: StaffUser = Staff
) -> Response:
    ctx = await _conversation_context(request, staff, conv_id)
    return render(request, "_live.html", {**ctx, "fragment": True})


async def _after(request: Request, staff: StaffUser, conv_id: int, call: Any) -> Response:
    """Run an action; on success back to the conversation (or the queue), else the page
    again with the reason, and the status code saying it."""
    try:
        await call
    except actions.Refused as refused:
        if refused.status in (403, 404):
            raise HTTPException(status_code=refused.status) from None
        ctx = await _conversation_context(request, staff, conv_id)
        ctx["error"] = translate(request_language(request), refused.key, **refused.values)
        return render(request, "conversation.html", ctx, status_code=refused.status)
    return RedirectResponse(f"/console/c/{conv_id}", status_code=303)


@router.post("/console/c/{conv_id}/take")
async def take(request: Request, conv_id: DbId, staff: StaffUser = Checked) -> Response:
    return await _after(request, staff, conv_id, actions.take(runtime_of(request), staff, conv_id))


@router.post("/console/c/{conv_id}/reply")
async def reply(
    request: Request,
    conv_id: DbId,
    staff: StaffUser = Checked,
    text: str = Form(""),
    nonce: str = Form(""),
) -> Response:
    rt = runtime_of(request)
    return await _after(request, staff, conv_id, actions.reply(rt, staff, conv_id, text, nonce))


@router.post("/console/c/{conv_id}/note")
async def note(
    request: Request, conv_id: DbId, staff: StaffUser = Checked, text: str = Form("")
) -> Response:
    rt = runtime_of(request)
    return await _after(request, staff, conv_id, actions.note(rt, staff, conv_id, text))


@router.post("/console/c/{conv_id}/transfer")
async def transfer(
    request: Request,
    conv_id: DbId,
    staff: StaffUser = Checked,
    to: int = Form(0, ge=0, le=MAX_DB_ID),
    target: str = Form("", max_length=40),
) -> Response:
    rt = runtime_of(request)
    call = actions.transfer(rt, staff, conv_id, to, target=target)
    response = await _after(request, staff, conv_id, call)
    return (
        RedirectResponse("/console", status_code=303) if response.status_code == 303 else response
    )


@router.post("/console/c/{conv_id}/close")
async def close(
    request: Request, conv_id: DbId, staff: StaffUser = Checked, resolution: str = Form("")
) -> Response:
    rt = runtime_of(request)
    response = await _after(request, staff, conv_id, actions.close(rt, staff, conv_id, resolution))
    return (
        RedirectResponse("/console", status_code=303) if response.status_code == 303 else response
    )


@router.post("/console/c/{conv_id}/incident/{incident_id}/close")
async def close_incident(
    request: Request, conv_id: DbId, incident_id: DbId, staff: StaffUser = Checked
) -> Response:
    rt = runtime_of(request)
    call = actions.close_incident(rt, staff, conv_id, incident_id)
    return await _after(request, staff, conv_id, call)


@router.post("/console/c/{conv_id}/give-back")
async def give_back(request: Request, conv_id: DbId, staff: StaffUser = Checked) -> Response:
    rt = runtime_of(request)
    response = await _after(request, staff, conv_id, actions.give_back(rt, staff, conv_id))
    return (
        RedirectResponse("/console", status_code=303) if response.status_code == 303 else response
    )


# -- media --------------------------------------------------------------------------------


WEBCHAT_MEDIA = "/channels/webchat/media/"


def _telegram_download(rt: Any) -> Any:
    """The Telegram channel's `download_file(file_id)`, when that channel runs here."""
    return getattr(rt.channels.get("telegram"), "download_file", None)


@router.get("/console/media/{attachment_id}")
async def media(request: Request, attachment_id: DbId, staff: StaffUser = Staff) -> Response:
    """A tenant's photo, for staff who may see its conversation: web chat uploads (which the
    widget fetches with its own session) and Telegram files (fetched with the bot token)."""
    rt = runtime_of(request)
    async with rt.db.session() as s:
        found = await load_attachment(s, attachment_id)
    if found is None:
        raise HTTPException(status_code=404)
    attachment, conv_id = found
    await _visible(request, staff, conv_id)
    url = attachment.url or ""
    result: Any = None
    if redirectable(
        url, rt.settings.twilio_api_base
    ):  # Twilio's media hosts only: never file:, javascript: or our network
        return RedirectResponse(url, status_code=302)
    if url.startswith(WEBCHAT_MEDIA):
        read_upload = getattr(rt.channels.get("webchat"), "read_upload", None)
        if read_upload is not None:
            try:
                result = await read_upload(url[len(WEBCHAT_MEDIA) :])
            except (OSError, ValueError, LookupError) as exc:
                raise HTTPException(status_code=404) from exc
    elif attachment.file_id:
        download = _telegram_download(rt)
        if download is not None:
            result = download(attachment.file_id)
            if inspect.isawaitable(result):
                result = await result
    if result is None:
        raise HTTPException(status_code=404)
    content_type = attachment.content_type or "image/jpeg"
    if isinstance(result, tuple):
        result, content_type = result[0], result[1] or content_type
    if not isinstance(result, bytes | bytearray) or not content_type.startswith("image/"):
        raise HTTPException(status_code=404)
    return Response(
        bytes(result),
        media_type=content_type,
        headers={"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )
