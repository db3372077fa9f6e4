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

# The parts of the input every decision needs; a request without them is denied.
required_sections := ["request", "client", "model", "tokens", "prompt"]

# Nearly every request has all of them: one conjunction settles that, and only an incomplete
# input pays for finding which ones are missing.
missing := set() if {
	is_object(input.request)
	is_object(input.client)
	is_object(input.model)
	is_object(input.tokens)
	is_object(input.prompt)
} else := {{"reason": concat("", ["input.", section, " is missing"]), "status": 403} |
	some section in required_sections
	not present(section)
}

# A helper, not `not is_object(input[section])`: a built-in over an undefined value is
# undefined, and so is its negation, so the rule would never fire.
present(section) if is_object(input[section])

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
