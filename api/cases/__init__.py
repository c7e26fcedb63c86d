"""Cases (差评工单) over HTTP: reads (api/cases/reads.py) and the steps people take (api/cases/actions.py)."""

from fastapi import APIRouter

from api.cases import actions, reads

router = APIRouter()
router.include_router(reads.router)
router.include_router(actions.router)
