# Types of the names mathsolve/__init__.py loads on first use (PEP 562 __getattr__).
from mathsolve.answers.grade import Grade as Grade
from mathsolve.api import Result as Result
from mathsolve.api import Solver as Solver
from mathsolve.api import extract_answer as extract_answer
from mathsolve.api import grade as grade
from mathsolve.engine.protocol import GenerationInterrupted as GenerationInterrupted
from mathsolve.engine.protocol import TextEvent as TextEvent
from mathsolve.errors import EngineError as EngineError
from mathsolve.errors import InputError as InputError
from mathsolve.errors import MathsolveError as MathsolveError
from mathsolve.errors import ModelError as ModelError
from mathsolve.errors import UsageError as UsageError
from mathsolve.solving.inputs import Problem as Problem

__version__: str
__all__: list[str]
