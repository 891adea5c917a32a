// What the dashboard writes, type-checked against the generated types by tests/test_types.py.
// Each @ts-expect-error must be an error, or tsc fails ("unused @ts-expect-error").
import { createClient } from "@supabase/supabase-js"
import type { Database, Tables } from "../../supabase/types/database"

const supabase = createClient<Database>("http://127.0.0.1:54321", "anon-key")

export async function saveConfig(automationId: string, expectedVersion: number) {
  const { data, error } = await supabase.schema("cfg").rpc("save_config", {
    automation_id: automationId,
    content: { http: { port: 8080 } },
    expected_version: expectedVersion,
  })
  return { data, error }
}

export async function mistakes(automationId: string) {
  // @ts-expect-error: argument names are the RPC's own (no p_ prefix)
  await supabase.schema("cfg").rpc("save_config", { p_automation_id: automationId, content: {}, expected_version: 1 })
  // @ts-expect-error: a required argument is missing
  await supabase.schema("cfg").rpc("save_config", { automation_id: automationId, content: {} })
  // @ts-expect-error: no such RPC
  await supabase.schema("cfg").rpc("save_configs", {})
  // @ts-expect-error: cfg_private is never exposed, so it is not in the types
  await supabase.schema("cfg_private").rpc("require_role", {})
}

// Rows are typed too: cfg is the default schema of the helpers.
export const automationName = (row: Tables<"automations">): string => row.name
