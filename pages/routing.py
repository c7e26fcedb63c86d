"""Page routes answer in HTML, whatever goes wrong: the shared checks raise HTTP errors, pages show them."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from pages.render import render
from pages.session import CsrfRefused, LoginRequired, login_url

_TITLES = {
    401: "请先登录",
    403: "无权执行此操作",
    404: "页面不存在",
    409: "操作未办理",
    422: "输入有误",
    429: "请求过于频繁",
    503: "服务暂时不可用",
}


def error_page(request: Request, status_code: int, message: str, **context: Any) -> HTMLResponse:
    title = _TITLES.get(status_code, "出错了")
    return render(request, "error.html.j2", status_code=status_code, title=title, message=message, **context)


def _message(detail: Any) -> str:
    if isinstance(detail, dict):
        return str(detail.get("message", ""))
    return str(detail or "")


class PageRoute(APIRoute):
    """An APIRoute whose errors are pages: sign-in for no session, a Chinese explanation for the rest."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                return RedirectResponse(login_url(exc.next_url, exc.expired), status_code=303)
            except CsrfRefused:
                return error_page(request, 403, "页面已过期或来源无效（缺少安全校验），请刷新页面后重新提交。")
            except RequestValidationError:
                return error_page(request, 422, "请求的参数无效，请从页面上的链接进入。")
            except HTTPException as exc:
                headers = (
                    {"Retry-After": exc.headers["Retry-After"]}
                    if exc.headers and "Retry-After" in exc.headers
                    else None
                )
                page = error_page(request, exc.status_code, _message(exc.detail))
                if headers:
                    page.headers.update(headers)
                return page

        return page_handler
