# METADATA
# title: Budgets
# description: |
#   A team's `monthly_budget` (data.teams) and a key's `monthly_budget` (key metadata) are
#   compared with the month's spend in input.usage. Near a budget (settings
#   budget_downgrade_at, a fraction) the request is downgraded to a cheaper model
#   (settings.cheaper_models); at or past it, denied with 429.
package gateway.budget

import data.gateway.caller
import data.gateway.models

budgets contains {"scope": concat(" ", ["team", input.client.team]), "limit": limit, "spent": spent} if {
	limit := caller.team.monthly_budget
	spent := object.get(input.usage, ["team", "spend_month"], 0)
}

budgets contains {"scope": "key", "limit": limit, "spent": spent} if {
	limit := input.client.metadata.monthly_budget
	is_number(limit)
	spent := object.get(input.usage, ["key", "spend_month"], 0)
}

deny contains {"reason": concat("", ["the ", b.scope, " monthly budget is spent"]), "status": 429} if {
	some b in budgets
	b.spent >= b.limit
}

nearly_spent if {
	some b in budgets
	b.spent >= b.limit * data.settings.budget_downgrade_at
}

# METADATA
# description: The cheaper model to use instead, when a budget is nearly spent.
downgrade := data.settings.cheaper_models[models.rewritten] if nearly_spent
