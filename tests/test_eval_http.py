"""HTTP clients against small servers started on 127.0.0.1: Serper search, the LLM judge, OpenAI-compatible generation,
and benchmark files named by URL."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from toolrl_trl import grammar
from toolrl_trl.eval import apibank, bamboogle
from toolrl_trl.eval.common import EvalDataError
from toolrl_trl.eval.generation import GenerationConfig, OpenAIBackend, build_backend
from toolrl_trl.eval.search import SearchError, SerperSearch, build_search, format_serper_paper, paper_search_text


@contextmanager
def local_server(handle: Callable[[str, dict, object], tuple[int, object]], files: dict[str, bytes] | None = None):
    """Serve POST requests with ``handle(path, headers, json_body) -> (status, json)`` and GET from ``files``."""
    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            headers = {k.lower(): v for k, v in self.headers.items()}  # HTTP header names are case-insensitive
            requests.append({"path": self.path, "headers": headers, "body": body})
            status, payload = handle(self.path, headers, body)
            self._send(status, json.dumps(payload).encode())

        def do_GET(self):  # noqa: N802
            content = (files or {}).get(self.path)
            self._send(200 if content is not None else 404, content or b"not found")

        def _send(self, status, data):
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


SERPER_ANSWER = {
    "answerBox": {"title": "Citibank", "answer": "June 16, 1812", "link": "https://example.org/citi"},
    "organic": [
        {"title": "History of Citibank", "snippet": "Founded in 1812 as the City Bank of New York.", "link": "u1"},
        {"title": "James Madison", "snippet": "Fourth president (1809-1817).", "link": "u2"},
        {"title": "Unrelated", "snippet": "Third result.", "link": "u3"},
    ],
}


def serper_handler(path, headers, body):
    if path != "/search":
        return 404, {"error": "no such route"}
    if headers.get("x-api-key") != "secret":
        return 403, {"message": "bad key"}
    return 200, SERPER_ANSWER


def test_serper_client_sends_key_and_query_and_parses_results(monkeypatch):
    monkeypatch.setenv("TEST_SERPER_KEY", "secret")
    with local_server(serper_handler) as (base, requests):
        search = build_search("serper", endpoint=f"{base}/search", api_key_env="TEST_SERPER_KEY")
        results = search.search("when was citibank founded", top_k=3)
    assert requests[0]["body"] == {"q": "when was citibank founded", "num": 3}
    assert requests[0]["headers"]["content-type"] == "application/json"
    assert [r.title for r in results] == ["Citibank", "History of Citibank", "James Madison"]
    assert results[0].snippet == "June 16, 1812"


def test_serper_errors_are_search_errors(monkeypatch):
    monkeypatch.setenv("TEST_SERPER_KEY", "wrong")
    with local_server(serper_handler) as (base, _):
        with pytest.raises(SearchError, match="HTTP 403"):
            SerperSearch(endpoint=f"{base}/search", api_key_env="TEST_SERPER_KEY").search("q", 3)
    monkeypatch.delenv("TEST_SERPER_KEY")
    with pytest.raises(ValueError, match="TEST_SERPER_KEY"):
        SerperSearch(api_key_env="TEST_SERPER_KEY")


def test_bamboogle_loop_with_http_search_and_judge(monkeypatch):
    monkeypatch.setenv("TEST_SERPER_KEY", "secret")
    monkeypatch.setenv("TEST_JUDGE_KEY", "judge-key")
    prompts_seen = []

    def model(conversations):
        prompts_seen.extend(conversations)
        out = []
        for conversation in conversations:
            if grammar.OBS_OPEN in conversation[1]["content"]:
                out.append(grammar.render_assistant_turn("Madison was president in 1812.", None, "James Madison"))
            else:
                call = {"name": "search", "parameters": {"query": "Citibank founded year"}}
                out.append(grammar.render_assistant_turn("Search first.", [call]))
        return out

    def judge_handler(path, headers, body):
        prompt = body["messages"][0]["content"]
        verdict = "Yes." if "Predicted answer: James Madison" in prompt else "no"
        return 200, {"choices": [{"message": {"role": "assistant", "content": verdict}}]}

    items = [{"id": 0, "question": "Who was president when Citibank was founded?", "answer": "james madison"}]
    with local_server(serper_handler) as (search_base, _), local_server(judge_handler) as (judge_base, judged):
        search = SerperSearch(endpoint=f"{search_base}/search", api_key_env="TEST_SERPER_KEY")
        (episode,) = bamboogle.run_episodes([items[0]["question"]], model, search, max_rounds=4, top_k=2)
        judge = bamboogle.LLMJudge(f"{judge_base}/v1", "judge-model", api_key_env="TEST_JUDGE_KEY")
        rows = [{"id": 0, "output": episode.output, "tool_calls": episode.tool_calls}]
        report = bamboogle.score_predictions(rows, items, judge)
    assert episode.tool_calls == 1 and episode.rounds == 2
    observation = prompts_seen[1][1]["content"]
    assert "History of Citibank" in observation and "Unrelated" not in observation  # top_k=2 after the answer box
    assert judged[0]["path"] == "/v1/chat/completions"
    assert judged[0]["headers"]["authorization"] == "Bearer judge-key"
    assert judged[0]["body"]["model"] == "judge-model" and judged[0]["body"]["temperature"] == 0
    assert report.summary["metric"] == "llm_judge"
    assert report.summary["accuracy"] == 1.0 and report.summary["exact_match"] == 1.0
    assert report.summary["avg_tool_calls"] == 1.0


def test_judge_replies_that_are_not_yes_or_no_count_as_not_judged():
    replies = iter(["No, it is wrong.", "maybe", "YES"])

    def handler(path, headers, body):
        return 200, {"choices": [{"message": {"content": next(replies)}}]}

    items = [{"id": i, "question": "q", "answer": "a"} for i in range(3)]
    rows = [{"id": i, "output": "<response> a </response>"} for i in range(3)]
    with local_server(handler) as (base, _):
        report = bamboogle.score_predictions(rows, items, bamboogle.LLMJudge(f"{base}/v1", "m"))
    assert [i["judge"] for i in report.items] == [False, None, True]
    assert report.summary["accuracy"] == pytest.approx(1 / 3)
    assert report.summary["not_judged"] == 1
    assert report.summary["exact_match"] == 1.0


def test_openai_chat_backend_posts_messages(monkeypatch):
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test")

    def handler(path, headers, body):
        last = body["messages"][-1]["content"]
        return 200, {"choices": [{"message": {"role": "assistant", "content": f"echo:{last}"}}]}

    with local_server(handler) as (base, requests):
        config = GenerationConfig(
            model="served-name",
            backend="openai",
            api_base=f"{base}/v1",
            api_key_env="TEST_OPENAI_KEY",
            max_new_tokens=7,
        )
        backend = build_backend(config)
        outputs = backend.generate([[{"role": "user", "content": "a"}], [{"role": "user", "content": "b"}]])
    assert outputs == ["echo:a", "echo:b"]  # input order, whatever order the concurrent requests finished in
    first = next(r for r in requests if r["body"]["messages"][0]["content"] == "a")
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["authorization"] == "Bearer sk-test"
    assert first["body"] == {
        "model": "served-name",
        "max_tokens": 7,
        "temperature": 0.0,
        "messages": [{"role": "user", "content": "a"}],
    }


def test_openai_completions_backend_renders_the_chat_template(tiny_model_dir):
    def handler(path, headers, body):
        return 200, {"choices": [{"text": " done"}]}

    with local_server(handler) as (base, requests):
        config = GenerationConfig(
            model="served",
            backend="openai",
            api_mode="completions",
            tokenizer=str(tiny_model_dir),
            api_base=f"{base}/v1",
        )
        outputs = OpenAIBackend(config).generate(
            [[{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]]
        )
    assert outputs == [" done"]
    assert requests[0]["path"] == "/v1/completions"
    prompt = requests[0]["body"]["prompt"]
    assert prompt.startswith("<|im_start|>system\nS<|im_end|>") and prompt.endswith("<|im_start|>assistant\n")


def test_openai_backend_reports_server_errors():
    def handler(path, headers, body):
        return 500, {"error": "boom"}

    with local_server(handler) as (base, _):
        backend = OpenAIBackend(GenerationConfig(model="m", backend="openai", api_base=f"{base}/v1"))
        with pytest.raises(RuntimeError, match="HTTP 500"):
            backend.generate([[{"role": "user", "content": "x"}]])


def test_benchmark_files_load_from_urls():
    level = [{"system": "s", "user": "u", "answer": [{"name": "A", "parameters": {"k": 1}}], "other": {}}]
    questions = [{"Question": "Q?", "Answer": "A"}]
    files = {
        "/data/level-2-api_processed.json": json.dumps(level).encode(),
        "/data/bamboogle.json": json.dumps(questions).encode(),
    }
    with local_server(lambda *a: (404, {}), files) as (base, _):
        source = apibank.level_source(f"{base}/data/", 2)
        items = apibank.load_level(source)
        report = apibank.score_predictions(
            [{"id": 0, "output": grammar.render_assistant_turn("t", level[0]["answer"])}], f"{base}/data", 2
        )
        loaded = bamboogle.load_bamboogle(f"{base}/data/bamboogle.json")
        with pytest.raises(EvalDataError, match=r"bamboogle.json: cannot be fetched \(HTTP Error 404"):
            bamboogle.load_bamboogle(f"{base}/missing/bamboogle.json")
    assert source == f"{base}/data/level-2-api_processed.json"
    assert items[0]["answer"] == level[0]["answer"]
    assert report.summary["accuracy"] == 1.0
    assert loaded == [{"id": 0, "question": "Q?", "answer": "A"}]


# ---------------------------------------------------------------------------------------------------------------------
# The paper's protocol over HTTP: its Serper client (utils.search_serper) and its judge
# ---------------------------------------------------------------------------------------------------------------------

PAPER_SERPER = {
    "answerBox": {"title": "Citibank", "answer": "June 16, 1812"},
    "organic": [
        {"title": "History", "snippet": "Founded in 1812."},
        {"title": "No snippet here"},  # skipped: the paper needs both title and snippet
        {"title": "Madison", "snippet": "Fourth president."},
        {"title": "Third", "snippet": "c"},
        {"title": "Fourth", "snippet": "d"},
        {"title": "Fifth", "snippet": "e"},  # the sixth entry counting the answer box: cut at num=5
    ],
}


def test_paper_serper_request_and_layout(monkeypatch):
    monkeypatch.setenv("TEST_SERPER_KEY", "secret")
    with local_server(lambda path, headers, body: (200, PAPER_SERPER)) as (base, requests):
        search = SerperSearch(endpoint=f"{base}/search", api_key_env="TEST_SERPER_KEY", retry_wait=0)
        text = paper_search_text(search, "citibank", 5)
    assert requests[0]["body"] == {"q": "citibank", "num": 15} and requests[0]["headers"]["x-api-key"] == "secret"
    assert text == (
        "1. Citibank\n- Answer: June 16, 1812\n2. History\n- Snippet: Founded in 1812.\n3. Madison\n"
        "- Snippet: Fourth president.\n4. Third\n- Snippet: c\n5. Fourth\n- Snippet: d"
    )
    # an answer box without a title is left out; with only a snippet it is shown as a snippet
    assert format_serper_paper({"answerBox": {"answer": "x"}, "organic": []}, 5) == ""
    box = {"answerBox": {"title": "T", "snippet": "s"}, "organic": [{"title": "o", "snippet": "p"}]}
    assert format_serper_paper(box, 1) == "1. T\n- Snippet: s"


def test_paper_serper_retries_empty_answers_then_times_out(monkeypatch):
    monkeypatch.setenv("TEST_SERPER_KEY", "secret")
    with local_server(lambda path, headers, body: (200, {"organic": []})) as (base, requests):
        search = SerperSearch(endpoint=f"{base}/search", api_key_env="TEST_SERPER_KEY", retry_wait=0)
        assert search.paper_text("q", 5) == "Search Error: Timeout"
    assert len(requests) == 7  # asked while try_time <= 5, the seventh answer is never read
    with local_server(lambda path, headers, body: (200, {"answerBox": {}})) as (base, _):
        search = SerperSearch(endpoint=f"{base}/search", api_key_env="TEST_SERPER_KEY", retry_wait=0)
        with pytest.raises(SearchError, match="no 'organic'"):
            search.paper_text("q", 5)


def test_paper_judge_sends_the_papers_messages_and_reads_judgment_yes(monkeypatch):
    monkeypatch.setenv("TEST_JUDGE_KEY", "judge-key")
    replies = iter(
        [
            (500, {"error": "busy"}),
            (200, {"choices": [{"message": {"content": " - Thought: same\n- Judgment: Yes "}}]}),
        ]
    )

    def handler(path, headers, body):
        return next(replies)

    with local_server(handler) as (base, requests):
        judge = bamboogle.PaperJudge(f"{base}/v1", "gpt-4o", "TEST_JUDGE_KEY", retry_wait=0)
        assert judge("Who?", "James Madison", "Madison") is True
    assert len(requests) == 2  # one retry after the failure
    body = requests[1]["body"]
    assert body["model"] == "gpt-4o" and body["temperature"] == 0 and body["n"] == 1
    assert body["messages"] == [
        {"role": "system", "content": bamboogle.JUDGE_SYS},
        {
            "role": "user",
            "content": "**Query**\nWho?\n\n**Ground Truth Answer**\nJames Madison\n\n**Predicted Answer**\nMadison\n\n"
            "Your Response:\n",
        },
    ]
    with local_server(lambda *a: (500, {"error": "down"})) as (base, requests):
        judge = bamboogle.PaperJudge(f"{base}/v1", "gpt-4o", retry_wait=0)
        assert judge("q", "a", "b") is None and len(requests) == 4  # the paper's 4 tries, then not judged


def test_openai_backend_sizes_budgets_from_the_prompt_and_sends_seeds(tiny_model_dir):
    from transformers import AutoTokenizer

    from toolrl_trl.eval.generation import Decoding, TokenBudget, prompt_length, render_prompt

    conversation = [{"role": "system", "content": "S"}, {"role": "user", "content": "a question"}]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    length = prompt_length(tokenizer, render_prompt(tokenizer, conversation))

    def handler(path, headers, body):
        return 200, {"choices": [{"message": {"content": "ok"}}]}

    with local_server(handler) as (base, requests):
        config = GenerationConfig(
            model="served", backend="openai", api_base=f"{base}/v1", tokenizer=str(tiny_model_dir)
        )
        backend = OpenAIBackend(config)
        budget = TokenBudget(cap=4096, context=length + 10)  # API-Bank's rule: context - prompt
        assert backend.generate([conversation], Decoding(budget, temperature=0.5, seed=3)) == ["ok"]
        assert backend.generate([conversation], Decoding(TokenBudget(cap=4096, context=length))) == [""]  # no room
    assert len(requests) == 1 and requests[0]["body"]["max_tokens"] == 10
    assert requests[0]["body"]["temperature"] == 0.5 and isinstance(requests[0]["body"]["seed"], int)


def test_api_keys_never_reach_logs_or_result_files(monkeypatch, tmp_path, caplog, tiny_model_dir):
    """Planted keys for the model server, the search tool and the judge; every server echoes the key it got."""
    import logging

    from toolrl_trl.eval.runner import EvalConfig, run_evaluation

    keys = {"TEST_OPENAI_KEY": "sk-planted-model-1111", "TEST_SERPER_KEY": "planted-serper-2222"}
    keys["TEST_JUDGE_KEY"] = "sk-planted-judge-3333"
    for name, value in keys.items():
        monkeypatch.setenv(name, value)
    calls = {"serper": 0, "judge": 0}

    def model(path, headers, body):
        user = body["messages"][1]["content"]
        if "<obs>" in user:
            return 200, {
                "choices": [{"message": {"content": "<think> t </think>\n<response> James Madison </response>"}}]
            }
        call = json.dumps({"name": "Search", "parameters": {"query": "citibank"}})
        return 200, {"choices": [{"message": {"content": f"<think> t </think>\n<tool_call>\n{call}\n</tool_call>"}}]}

    def serper(path, headers, body):
        calls["serper"] += 1
        if calls["serper"] == 1:
            return 500, {"error": f"bad key {headers.get('x-api-key')}"}
        return 200, SERPER_ANSWER

    def judge(path, headers, body):
        calls["judge"] += 1
        if calls["judge"] == 1:
            return 401, {"error": f"rejected {headers.get('authorization')}"}
        return 200, {"choices": [{"message": {"content": "- Thought: ok\n- Judgment: Yes"}}]}

    data = tmp_path / "bamboogle.json"
    data.write_text(
        json.dumps([{"Question": "Who was president when Citibank was founded?", "Answer": "James Madison"}])
    )
    out = tmp_path / "results"
    caplog.set_level(logging.DEBUG)
    with (
        local_server(model) as (model_base, _),
        local_server(serper) as (s_base, _),
        local_server(judge) as (j_base, _),
    ):
        config = EvalConfig(
            benchmarks="bamboogle",
            bamboogle_data=str(data),
            search_backend="serper",
            search_endpoint=f"{s_base}/search",
            search_api_key_env="TEST_SERPER_KEY",
            search_retry_wait=0,
            judge_api_base=f"{j_base}/v1",
            judge_api_key_env="TEST_JUDGE_KEY",
            judge_retry_wait=0,
            results_dir=str(out),
        )
        generation = GenerationConfig(
            model="served", backend="openai", api_base=f"{model_base}/v1", api_key_env="TEST_OPENAI_KEY"
        )
        result = run_evaluation(config, generation)
    assert result.reports["bamboogle"].summary["accuracy"] == 1.0 and calls == {"serper": 2, "judge": 2}
    assert "HTTP 401" in caplog.text  # the failure was logged ...
    written = "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    for value in keys.values():
        assert value not in caplog.text and value not in written  # ... without the key


def test_openai_errors_do_not_repeat_an_echoed_key(monkeypatch):
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-echoed-4444")

    def handler(path, headers, body):
        return 401, {"error": f"invalid key {headers['authorization']}"}

    with local_server(handler) as (base, _):
        backend = OpenAIBackend(
            GenerationConfig(model="m", backend="openai", api_base=f"{base}/v1", api_key_env="TEST_OPENAI_KEY")
        )
        with pytest.raises(RuntimeError, match="HTTP 401") as caught:
            backend.generate([[{"role": "user", "content": "x"}]])
    assert "sk-echoed-4444" not in str(caught.value) and "***" in str(caught.value)
