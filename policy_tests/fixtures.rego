# METADATA
# title: Test fixtures
# description: A complete, allowed input; tests patch it with object.union (a deep merge).
package gateway.fixtures

base_input := {
	"request": {
		"id": "req-1",
		"endpoint": "chat.completions",
		"method": "POST",
		"path": "/v1/chat/completions",
		"source_ip": "10.0.0.7",
		"time": "2026-11-27T08:00:00+00:00",
		"stream": false,
		"headers": {},
	},
	"client": {
		"auth": "api_key",
		"key_id": "key-1",
		"key_name": "ci",
		"team": "research",
		"user": "alice",
		"metadata": {},
		"claims": {},
	},
	"model": {"requested": "gpt-4o", "provider": "openai", "deployment": "openai-gpt-4o"},
	"tokens": {"prompt_estimate": 100, "max_output": null},
	"prompt": {
		"messages": 2,
		"chars": 200,
		"has_system": true,
		"pii": [],
		"injection": {"score": 0.0, "signals": []},
	},
	"usage": {"key": {"tokens_today": 0, "spend_month": 0}, "team": {"spend_month": 0}},
}

input_with(patch) := object.union(base_input, patch)
