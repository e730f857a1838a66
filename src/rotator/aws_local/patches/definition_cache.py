"""Speed, not fidelity: a state machine's definition is parsed once, not at every execution.

This patch restores no AWS behaviour; it removes a cost AWS does not have. moto 5.2 lexes and
parses a state machine's whole Amazon States Language definition with ANTLR at
``CreateStateMachine`` and again at the start of every execution
(``ExecutionWorker._get_evaluation_entrypoint``). For this project's rotation machine (about
50 KB of ASL after substitution) that parse costs 0.4-0.7 s of CPU per execution, the bulk of
a local rotation (four executions): the local runtime's timings were dominated by a cost of the
emulator. The patch therefore cites no AWS page (``aws_doc`` is empty): it restores speed, not
a behaviour.

What is cached, and why nothing else changes:

- the cache holds the ANTLR parse tree of each definition text (at most
  :data:`MAX_DEFINITIONS`, least recently used first out). The tree is a pure function of the
  text: the same text always lexes and parses to the same tree, and nothing writes to a tree
  after the parser built it (the preprocessor only reads it);
- every execution still builds its own program (moto's ``Preprocessor`` turns the tree into
  fresh evaluation components), exactly as before. No component, retry counter or branch
  state is shared between executions, so concurrent executions of one machine behave as they
  did;
- a definition with a syntax error is not cached: it fails as it did, with moto's own
  ``ASLParserException`` (``CreateStateMachine`` answers ``InvalidDefinition``);
- only ``AmazonStateLanguageParser.parse`` is replaced (moto's execution worker and its
  definition check both call it); the test-state parser (``TestState``), which parses a single
  state, keeps moto's own.

``tests/fidelity/test_definition_cache.py`` shows the parse count drop to one per definition
and the histories of executions stay identical with and without the patch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from rotator.aws_local.patches import MotoPatch

#: how many distinct definition texts keep their parse tree (the stack has two machines; the
#: fidelity tests create small ones by the dozen)
MAX_DEFINITIONS = 32


class ParseTreeCache:
    """Definition text -> ANTLR parse tree, least recently used evicted first; thread-safe."""

    def __init__(self, size: int = MAX_DEFINITIONS) -> None:
        self.size = size
        self._trees: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        #: how many times a definition was lexed and parsed (cache misses)
        self.parses = 0

    def tree(self, definition: str) -> Any:
        with self._lock:
            found = self._trees.get(definition)
            if found is not None:
                self._trees.move_to_end(definition)
                return found
        tree = parse_tree(definition)  # outside the lock: parses of different texts overlap
        with self._lock:
            self.parses += 1
            self._trees[definition] = tree
            self._trees.move_to_end(definition)
            while len(self._trees) > self.size:
                self._trees.popitem(last=False)
        return tree

    def clear(self) -> None:
        with self._lock:
            self._trees.clear()


def parse_tree(definition: str) -> Any:
    """moto's lexing and parsing of ``definition``, its syntax errors raised as moto raises
    them (the first half of ``AmazonStateLanguageParser.parse``)."""
    from antlr4 import CommonTokenStream, InputStream
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLLexer import ASLLexer
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
    from moto.stepfunctions.parser.asl.parse.asl_parser import (
        ASLParserException,
        SyntaxErrorListener,
    )

    listener = SyntaxErrorListener()
    parser = ASLParser(CommonTokenStream(ASLLexer(InputStream(definition))))
    parser.removeErrorListeners()
    parser.addErrorListener(listener)
    tree = parser.state_machine()
    if listener.errors:
        raise ASLParserException(errors=listener.errors)
    return tree


class ParsedDefinitionsAreCached(MotoPatch):
    aws_doc = ""  # restores speed, not an AWS behaviour

    def __init__(self, cloud: Any) -> None:
        super().__init__(cloud)
        self.cache = ParseTreeCache()

    def replacements(self) -> list[tuple[type, str, Any]]:
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
        from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

        cache = self.cache

        def parse(definition: str) -> tuple[Any, Any]:
            tree = cache.tree(definition)
            # a fresh program for every caller: evaluation components are never shared
            return Preprocessor().visit(tree), tree

        return [(AmazonStateLanguageParser, "parse", staticmethod(parse))]
