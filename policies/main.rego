# METADATA
# title: Gateway decision
# description: |
#   Entry point of the gateway: data.gateway.decision. It assembles the answers of one
#   package per concern (models, limits, guards, budget, enrich) into the decision document
#   the gateway validates. Anything missing from the input denies; nothing here allows by
#   default.
# entrypoint: true
package gateway

import data.gateway.budget
import data.gateway.enrich
import data.gateway.guards
import data.gateway.limits
import data.gateway.models

default allow := false

allow if count(denials) == 0

# The input fields every decision needs; a request without one of them is denied. Nearly
# every request has them all: one conjunction settles that, and only an incomplete input pays
# for finding which ones are missing.
missing := set() if {
	is_object(input.request)
	is_object(input.client)
	is_string(input.model.requested)
	is_number(input.tokens.prompt_estimate)
	is_array(input.prompt.pii)
	is_number(input.prompt.injection.score)
} else := {{"reason": concat("", [field, " is missing"]), "status": 403} |
	# object.get, not input.x.y: a built-in over an undefined value is undefined, and so is
	# its negation, so a missing field would not be found.
	some field, present in {
		"input.request": is_object(object.get(input, "request", null)),
		"input.client": is_object(object.get(input, "client", null)),
		"input.model": is_object(object.get(input, "model", null)),
		"input.tokens": is_object(object.get(input, "tokens", null)),
		"input.prompt": is_object(object.get(input, "prompt", null)),
		"input.model.requested": is_string(object.get(input, ["model", "requested"], null)),
		"input.tokens.prompt_estimate": is_number(object.get(input, ["tokens", "prompt_estimate"], null)),
		"input.prompt.pii": is_array(object.get(input, ["prompt", "pii"], null)),
		"input.prompt.injection.score": is_number(object.get(input, ["prompt", "injection", "score"], null)),
	}
	present == false
}

# Every concern's denials, each {"reason": string, "status": HTTP status}.
denials := union({missing, models.deny, limits.deny, guards.deny, budget.deny})

reasons := {d.reason | some d in denials}

statuses := {d.status | some d in denials}

# 403 (forbidden) wins over softer statuses: a caller must not be told to retry a request
# that would be refused anyway. An allowed request carries the default, 403.
status := 403 if allow
else := 403 if 403 in statuses
else := max(statuses)

# The model the request goes to: a budget downgrade, else the team's rewrite, else as asked.
model := m if {
	m := budget.downgrade
} else := models.rewritten

# Only the fields that apply: an absent field means "leave the request as it is".
transform["model"] := model if model != input.model.requested

transform["max_tokens"] := limits.max_tokens

transform["system_prompt"] := enrich.system_prompt

transform["headers"] := enrich.headers

transform["redact"] := guards.request_redact

decision := {
	"allow": allow,
	"reasons": reasons,
	"status": status,
	"transform": transform,
	"limits": limits.declared,
	"response": {"redact": guards.response_redact, "deny_on": guards.response_deny_on},
	"tags": enrich.tags,
}
