# METADATA
# title: Prompt and response guards
# description: |
#   Denies prompts carrying PII types the gateway or the team forbids and prompts whose
#   prompt-injection score reaches the threshold (the team's, else the default). Lists the PII
#   types to anonymize in the request and to redact from, or deny on, the response.
package gateway.guards

import data.gateway.caller

# Each PII list is the gateway's (data.settings) plus the team's; most teams have no list of
# their own and pay for one comprehension only.
denied_pii := {t | some t in array.concat(data.settings.deny_pii, team_list)} if {
	team_list := caller.team.deny_pii
} else := {t | some t in data.settings.deny_pii}

# Who forbids a PII type, for the reason text.
forbidden_by(pii_type) := concat(" ", ["team", input.client.team]) if pii_type in caller.team.deny_pii
else := "gateway"

deny contains {"reason": sprintf("prompt contains %s, which the %s policy forbids", [finding.type, scope]), "status": 403} if {
	some finding in input.prompt.pii
	finding.count > 0
	finding.type in denied_pii
	scope := forbidden_by(finding.type)
}

deny contains {
	"reason": sprintf("prompt-injection score %v reaches the threshold %v", [input.prompt.injection.score, threshold]),
	"status": 403,
} if {
	# The team's threshold, else the gateway's.
	threshold := object.get(caller.team, "injection_threshold", data.settings.injection_threshold)
	input.prompt.injection.score >= threshold
}

# METADATA
# description: PII types the guards anonymize in the request before it goes upstream.
request_redact := {t | some t in array.concat(data.settings.redact_pii, team_list)} if {
	team_list := caller.team.redact_pii
} else := {t | some t in data.settings.redact_pii}

# METADATA
# description: PII types redacted from the response, and those that deny it.
response_redact := {t | some t in array.concat(data.settings.response_redact, team_list)} if {
	team_list := caller.team.response_redact
} else := {t | some t in data.settings.response_redact}

response_deny_on := {t | some t in caller.team.response_deny_on}
