export type Json =
  | string
  | number
  | boolean
  | null
  | { [key: string]: Json | undefined }
  | Json[]

export type Database = {
  cfg: {
    Tables: {
      audit_log: {
        Row: {
          actor_email: string | null
          actor_id: string | null
          actor_role: string
          automation_id: string | null
          created_at: string
          id: number
          new_values: Json | null
          old_values: Json | null
          operation: string
          org_id: string
          readable_by: Database["cfg"]["Enums"]["org_role"]
          row_id: string
          table_name: string
          txid: number
        }
        Insert: {
          actor_email?: string | null
          actor_id?: string | null
          actor_role: string
          automation_id?: string | null
          created_at?: string
          id?: never
          new_values?: Json | null
          old_values?: Json | null
          operation: string
          org_id: string
          readable_by?: Database["cfg"]["Enums"]["org_role"]
          row_id: string
          table_name: string
          txid?: number
        }
        Update: {
          actor_email?: string | null
          actor_id?: string | null
          actor_role?: string
          automation_id?: string | null
          created_at?: string
          id?: never
          new_values?: Json | null
          old_values?: Json | null
          operation?: string
          org_id?: string
          readable_by?: Database["cfg"]["Enums"]["org_role"]
          row_id?: string
          table_name?: string
          txid?: number
        }
        Relationships: []
      }
      automation_origins: {
        Row: {
          automation_id: string
          created_at: string
          id: string
          org_id: string
          source_automation_id: string | null
          source_org_id: string | null
          source_version: number | null
          template_id: string | null
          template_values: Json
          template_version: number | null
          updated_at: string
        }
        Insert: {
          automation_id: string
          created_at?: string
          id?: string
          org_id: string
          source_automation_id?: string | null
          source_org_id?: string | null
          source_version?: number | null
          template_id?: string | null
          template_values?: Json
          template_version?: number | null
          updated_at?: string
        }
        Update: {
          automation_id?: string
          created_at?: string
          id?: string
          org_id?: string
          source_automation_id?: string | null
          source_org_id?: string | null
          source_version?: number | null
          template_id?: string | null
          template_values?: Json
          template_version?: number | null
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "automation_origins_automation_fkey"
            columns: ["automation_id", "org_id"]
            isOneToOne: false
            referencedRelation: "automations"
            referencedColumns: ["id", "org_id"]
          },
          {
            foreignKeyName: "automation_origins_template_fkey"
            columns: ["template_id", "org_id"]
            isOneToOne: false
            referencedRelation: "templates"
            referencedColumns: ["id", "org_id"]
          },
        ]
      }
      automation_types: {
        Row: {
          created_at: string
          description: string
          id: string
          name: string
          org_id: string
          slug: string
          updated_at: string
        }
        Insert: {
          created_at?: string
          description?: string
          id?: string
          name: string
          org_id: string
          slug: string
          updated_at?: string
        }
        Update: {
          created_at?: string
          description?: string
          id?: string
          name?: string
          org_id?: string
          slug?: string
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "automation_types_org_id_fkey"
            columns: ["org_id"]
            isOneToOne: false
            referencedRelation: "orgs"
            referencedColumns: ["id"]
          },
        ]
      }
      automations: {
        Row: {
          created_at: string
          created_by: string | null
          description: string
          id: string
          name: string
          org_id: string
          slug: string
          status: Database["cfg"]["Enums"]["automation_status"]
          tags: string[]
          type: string
          updated_at: string
          updated_by: string | null
        }
        Insert: {
          created_at?: string
          created_by?: string | null
          description?: string
          id?: string
          name: string
          org_id: string
          slug: string
          status?: Database["cfg"]["Enums"]["automation_status"]
          tags?: string[]
          type?: string
          updated_at?: string
          updated_by?: string | null
        }
        Update: {
          created_at?: string
          created_by?: string | null
          description?: string
          id?: string
          name?: string
          org_id?: string
          slug?: string
          status?: Database["cfg"]["Enums"]["automation_status"]
          tags?: string[]
          type?: string
          updated_at?: string
          updated_by?: string | null
        }
        Relationships: [
          {
            foreignKeyName: "automations_org_id_fkey"
            columns: ["org_id"]
            isOneToOne: false
            referencedRelation: "orgs"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "automations_type_fkey"
            columns: ["org_id", "type"]
            isOneToOne: false
            referencedRelation: "automation_types"
            referencedColumns: ["org_id", "slug"]
          },
        ]
      }
      bulk_operation_items: {
        Row: {
          audit_ids: number[]
          automation_id: string
          code: string | null
          created_at: string
          detail: Json | null
          id: string
          message: string | null
          operation_id: string
          org_id: string
          position: number
          request_id: string | null
          result: string
          updated_at: string
          version_id: string | null
        }
        Insert: {
          audit_ids?: number[]
          automation_id: string
          code?: string | null
          created_at?: string
          detail?: Json | null
          id?: string
          message?: string | null
          operation_id: string
          org_id: string
          position: number
          request_id?: string | null
          result: string
          updated_at?: string
          version_id?: string | null
        }
        Update: {
          audit_ids?: number[]
          automation_id?: string
          code?: string | null
          created_at?: string
          detail?: Json | null
          id?: string
          message?: string | null
          operation_id?: string
          org_id?: string
          position?: number
          request_id?: string | null
          result?: string
          updated_at?: string
          version_id?: string | null
        }
        Relationships: [
          {
            foreignKeyName: "bulk_operation_items_operation_fkey"
            columns: ["operation_id", "org_id"]
            isOneToOne: false
            referencedRelation: "bulk_operations"
            referencedColumns: ["id", "org_id"]
          },
        ]
      }
      bulk_operations: {
        Row: {
          action: string
          atomic: boolean
          batch_size: number
          cancelled_by: string | null
          created_at: string
          created_by: string | null
          created_by_email: string | null
          cursor: number
          done: number
          error: Json | null
          failed: number
          finished_at: string | null
          heartbeat_at: string
          id: string
          not_found: number
          options: Json
          org_id: string
          rolled_back: number
          selection: Json
          status: string
          succeeded: number
          total: number
          unchanged: number
          updated_at: string
        }
        Insert: {
          action: string
          atomic?: boolean
          batch_size?: number
          cancelled_by?: string | null
          created_at?: string
          created_by?: string | null
          created_by_email?: string | null
          cursor?: number
          done?: number
          error?: Json | null
          failed?: number
          finished_at?: string | null
          heartbeat_at?: string
          id?: string
          not_found?: number
          options?: Json
          org_id: string
          rolled_back?: number
          selection: Json
          status?: string
          succeeded?: number
          total?: number
          unchanged?: number
          updated_at?: string
        }
        Update: {
          action?: string
          atomic?: boolean
          batch_size?: number
          cancelled_by?: string | null
          created_at?: string
          created_by?: string | null
          created_by_email?: string | null
          cursor?: number
          done?: number
          error?: Json | null
          failed?: number
          finished_at?: string | null
          heartbeat_at?: string
          id?: string
          not_found?: number
          options?: Json
          org_id?: string
          rolled_back?: number
          selection?: Json
          status?: string
          succeeded?: number
          total?: number
          unchanged?: number
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "bulk_operations_org_id_fkey"
            columns: ["org_id"]
            isOneToOne: false
            referencedRelation: "orgs"
            referencedColumns: ["id"]
          },
        ]
      }
      config_entries: {
        Row: {
          automation_id: string
          created_at: string
          description: string
          id: string
          is_secret: boolean
          key: string
          org_id: string
          section_id: string
          updated_at: string
          value: Json | null
        }
        Insert: {
          automation_id: string
          created_at?: string
          description?: string
          id?: string
          is_secret?: boolean
          key: string
          org_id: string
          section_id: string
          updated_at?: string
          value?: Json | null
        }
        Update: {
          automation_id?: string
          created_at?: string
          description?: string
          id?: string
          is_secret?: boolean
          key?: string
          org_id?: string
          section_id?: string
          updated_at?: string
          value?: Json | null
        }
        Relationships: [
          {
            foreignKeyName: "config_entries_section_fkey"
            columns: ["section_id", "automation_id", "org_id"]
            isOneToOne: false
            referencedRelation: "config_sections"
            referencedColumns: ["id", "automation_id", "org_id"]
          },
        ]
      }
      config_sections: {
        Row: {
          automation_id: string
          created_at: string
          description: string
          id: string
          name: string
          org_id: string
          position: number
          updated_at: string
        }
        Insert: {
          automation_id: string
          created_at?: string
          description?: string
          id?: string
          name: string
          org_id: string
          position?: number
          updated_at?: string
        }
        Update: {
          automation_id?: string
          created_at?: string
          description?: string
          id?: string
          name?: string
          org_id?: string
          position?: number
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "config_sections_automation_fkey"
            columns: ["automation_id", "org_id"]
            isOneToOne: false
            referencedRelation: "automations"
            referencedColumns: ["id", "org_id"]
          },
        ]
      }
      config_versions: {
        Row: {
          author_email: string | null
          author_id: string | null
          author_role: string
          automation_id: string
          changes: Json | null
          content: Json
          content_hash: string
          created_at: string
          id: string
          kind: string
          message: string
          org_id: string
          parent_version: number | null
          restored_from: number | null
          updated_at: string
          version: number
        }
        Insert: {
          author_email?: string | null
          author_id?: string | null
          author_role: string
          automation_id: string
          changes?: Json | null
          content: Json
          content_hash: string
          created_at?: string
          id?: string
          kind?: string
          message?: string
          org_id: string
          parent_version?: number | null
          restored_from?: number | null
          updated_at?: string
          version: number
        }
        Update: {
          author_email?: string | null
          author_id?: string | null
          author_role?: string
          automation_id?: string
          changes?: Json | null
          content?: Json
          content_hash?: string
          created_at?: string
          id?: string
          kind?: string
          message?: string
          org_id?: string
          parent_version?: number | null
          restored_from?: number | null
          updated_at?: string
          version?: number
        }
        Relationships: [
          {
            foreignKeyName: "config_versions_automation_fkey"
            columns: ["automation_id", "org_id"]
            isOneToOne: false
            referencedRelation: "automations"
            referencedColumns: ["id", "org_id"]
          },
        ]
      }
      deployment_history: {
        Row: {
          actor_email: string | null
          actor_id: string | null
          automation_id: string
          created_at: string
          environment_id: string
          from_environment_id: string | null
          id: string
          org_id: string
          previous_version: number | null
          reason: string | null
          request_id: string | null
          source: string
          updated_at: string
          version: number
          version_id: string
        }
        Insert: {
          actor_email?: string | null
          actor_id?: string | null
          automation_id: string
          created_at?: string
          environment_id: string
          from_environment_id?: string | null
          id?: string
          org_id: string
          previous_version?: number | null
          reason?: string | null
          request_id?: string | null
          source: string
          updated_at?: string
          version: number
          version_id: string
        }
        Update: {
          actor_email?: string | null
          actor_id?: string | null
          automation_id?: string
          created_at?: string
          environment_id?: string
          from_environment_id?: string | null
          id?: string
          org_id?: string
          previous_version?: number | null
          reason?: string | null
          request_id?: string | null
          source?: string
          updated_at?: string
          version?: number
          version_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "deployment_history_environment_fkey"
            columns: ["environment_id", "org_id"]
            isOneToOne: false
            referencedRelation: "environments"
            referencedColumns: ["id", "org_id"]
          },
          {
            foreignKeyName: "deployment_history_version_fkey"
            columns: ["version_id", "automation_id", "org_id"]
            isOneToOne: false
            referencedRelation: "config_versions"
            referencedColumns: ["id", "automation_id", "org_id"]
          },
        ]
      }
      deployments: {
        Row: {
          automation_id: string
          created_at: string
          deployed_at: string
          deployed_by: string | null
          deployed_by_email: string | null
          environment_id: string
          id: string
          org_id: string
          updated_at: string
          version: number
          version_id: string
        }
        Insert: {
          automation_id: string
          created_at?: string
          deployed_at?: string
          deployed_by?: string | null
          deployed_by_email?: string | null
          environment_id: string
          id?: string
          org_id: string
          updated_at?: string
          version: number
          version_id: string
        }
        Update: {
          automation_id?: string
          created_at?: string
          deployed_at?: string
          deployed_by?: string | null
          deployed_by_email?: string | null
          environment_id?: string
          id?: string
          org_id?: string
          updated_at?: string
          version?: number
          version_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "deployments_environment_fkey"
            columns: ["environment_id", "org_id"]
            isOneToOne: false
            referencedRelation: "environments"
            referencedColumns: ["id", "org_id"]
          },
          {
            foreignKeyName: "deployments_version_fkey"
            columns: ["version_id", "automation_id", "org_id"]
            isOneToOne: false
            referencedRelation: "config_versions"
            referencedColumns: ["id", "automation_id", "org_id"]
          },
        ]
      }
      entry_secrets: {
        Row: {
          created_at: string
          expires_at: string | null
          id: string
          member: string | null
          org_id: string
          rotate_every: string | null
          secret_id: string | null
          token: string
          updated_at: string
          value_set_at: string
        }
        Insert: {
          created_at?: string
          expires_at?: string | null
          id: string
          member?: string | null
          org_id: string
          rotate_every?: string | null
          secret_id?: string | null
          token: string
          updated_at?: string
          value_set_at?: string
        }
        Update: {
          created_at?: string
          expires_at?: string | null
          id?: string
          member?: string | null
          org_id?: string
          rotate_every?: string | null
          secret_id?: string | null
          token?: string
          updated_at?: string
          value_set_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "entry_secrets_entry_fkey"
            columns: ["id", "org_id"]
            isOneToOne: false
            referencedRelation: "config_entries"
            referencedColumns: ["id", "org_id"]
          },
        ]
      }
      environment_change_requests: {
        Row: {
          applied_at: string | null
          before: Json
          change: Json
          created_at: string
          decided_at: string | null
          decided_by: string | null
          decided_by_email: string | null
          decision_comment: string | null
          environment_id: string | null
          environment_slug: string
          id: string
          org_id: string
          reason: string
          requested_by: string | null
          requested_by_email: string | null
          status: string
          updated_at: string
        }
        Insert: {
          applied_at?: string | null
          before: Json
          change: Json
          created_at?: string
          decided_at?: string | null
          decided_by?: string | null
          decided_by_email?: string | null
          decision_comment?: string | null
          environment_id?: string | null
          environment_slug: string
          id?: string
          org_id: string
          reason?: string
          requested_by?: string | null
          requested_by_email?: string | null
          status?: string
          updated_at?: string
        }
        Update: {
          applied_at?: string | null
          before?: Json
          change?: Json
          created_at?: string
          decided_at?: string | null
          decided_by?: string | null
          decided_by_email?: string | null
          decision_comment?: string | null
          environment_id?: string | null
          environment_slug?: string
          id?: string
          org_id?: string
          reason?: string
          requested_by?: string | null
          requested_by_email?: string | null
          status?: string
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "environment_change_requests_environment_fkey"
            columns: ["environment_id", "org_id"]
            isOneToOne: false
            referencedRelation: "environments"
            referencedColumns: ["id", "org_id"]
          },
          {
            foreignKeyName: "environment_change_requests_org_id_fkey"
            columns: ["org_id"]
            isOneToOne: false
            referencedRelation: "orgs"
            referencedColumns: ["id"]
          },
        ]
      }
      environments: {
        Row: {
          created_at: string
          id: string
          name: string
          org_id: string
          position: number
          requires_approval: boolean
          slug: string
          updated_at: string
        }
        Insert: {
          created_at?: string
          id?: string
          name: string
          org_id: string
          position: number
          requires_approval?: boolean
          slug: string
          updated_at?: string
        }
        Update: {
          created_at?: string
          id?: string
          name?: string
          org_id?: string
          position?: number
          requires_approval?: boolean
          slug?: string
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "environments_org_id_fkey"
            columns: ["org_id"]
            isOneToOne: false
            referencedRelation: "orgs"
            referencedColumns: ["id"]
          },
        ]
      }
      org_invitations: {
        Row: {
          accepted_at: string | null
          accepted_by: string | null
          created_at: string
          email: string
          expires_at: string
          id: string
          invited_by: string | null
          invited_by_email: string | null
          org_id: string
          revoked_at: string | null
          revoked_by: string | null
          role: Database["cfg"]["Enums"]["org_role"]
          updated_at: string
        }
        Insert: {
          accepted_at?: string | null
          accepted_by?: string | null
          created_at?: string
          email: string
          expires_at: string
          id?: string
          invited_by?: string | null
          invited_by_email?: string | null
          org_id: string
          revoked_at?: string | null
          revoked_by?: string | null
          role?: Database["cfg"]["Enums"]["org_role"]
          updated_at?: string
        }
        Update: {
          accepted_at?: string | null
          accepted_by?: string | null
          created_at?: string
          email?: string
          expires_at?: string
          id?: string
          invited_by?: string | null
          invited_by_email?: string | null
          org_id?: string
          revoked_at?: string | null
          revoked_by?: string | null
          role?: Database["cfg"]["Enums"]["org_role"]
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "org_invitations_org_id_fkey"
            columns: ["org_id"]
            isOneToOne: false
            referencedRelation: "orgs"
            referencedColumns: ["id"]
          },
        ]
      }
      org_members: {
        Row: {
          created_at: string
          id: string
          invited_by: string | null
          org_id: string
          role: Database["cfg"]["Enums"]["org_role"]
          updated_at: string
          user_id: string
        }
        Insert: {
          created_at?: string
          id?: string
          invited_by?: string | null
          org_id: string
          role?: Database["cfg"]["Enums"]["org_role"]
          updated_at?: string
          user_id: string
        }
        Update: {
          created_at?: string
          id?: string
          invited_by?: string | null
          org_id?: string
          role?: Database["cfg"]["Enums"]["org_role"]
          updated_at?: string
          user_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "org_members_org_id_fkey"
            columns: ["org_id"]
            isOneToOne: false
            referencedRelation: "orgs"
            referencedColumns: ["id"]
          },
        ]
      }
      orgs: {
        Row: {
          created_at: string
          created_by: string | null
          id: string
          name: string
          secret_reveal_role: Database["cfg"]["Enums"]["org_role"]
          slug: string
          updated_at: string
        }
        Insert: {
          created_at?: string
          created_by?: string | null
          id?: string
          name: string
          secret_reveal_role?: Database["cfg"]["Enums"]["org_role"]
          slug: string
          updated_at?: string
        }
        Update: {
          created_at?: string
          created_by?: string | null
          id?: string
          name?: string
          secret_reveal_role?: Database["cfg"]["Enums"]["org_role"]
          slug?: string
          updated_at?: string
        }
        Relationships: []
      }
      promotion_requests: {
        Row: {
          applied_at: string | null
          automation_id: string
          created_at: string
          decided_at: string | null
          decided_by: string | null
          decided_by_email: string | null
          decision_comment: string | null
          from_environment_id: string
          id: string
          message: string
          org_id: string
          requested_by: string | null
          requested_by_email: string | null
          skip_reason: string | null
          status: Database["cfg"]["Enums"]["promotion_status"]
          superseded_by: string | null
          target_version: number | null
          to_environment_id: string
          updated_at: string
          version: number
          version_id: string
        }
        Insert: {
          applied_at?: string | null
          automation_id: string
          created_at?: string
          decided_at?: string | null
          decided_by?: string | null
          decided_by_email?: string | null
          decision_comment?: string | null
          from_environment_id: string
          id?: string
          message?: string
          org_id: string
          requested_by?: string | null
          requested_by_email?: string | null
          skip_reason?: string | null
          status?: Database["cfg"]["Enums"]["promotion_status"]
          superseded_by?: string | null
          target_version?: number | null
          to_environment_id: string
          updated_at?: string
          version: number
          version_id: string
        }
        Update: {
          applied_at?: string | null
          automation_id?: string
          created_at?: string
          decided_at?: string | null
          decided_by?: string | null
          decided_by_email?: string | null
          decision_comment?: string | null
          from_environment_id?: string
          id?: string
          message?: string
          org_id?: string
          requested_by?: string | null
          requested_by_email?: string | null
          skip_reason?: string | null
          status?: Database["cfg"]["Enums"]["promotion_status"]
          superseded_by?: string | null
          target_version?: number | null
          to_environment_id?: string
          updated_at?: string
          version?: number
          version_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "promotion_requests_from_environment_fkey"
            columns: ["from_environment_id", "org_id"]
            isOneToOne: false
            referencedRelation: "environments"
            referencedColumns: ["id", "org_id"]
          },
          {
            foreignKeyName: "promotion_requests_superseded_by_fkey"
            columns: ["superseded_by"]
            isOneToOne: false
            referencedRelation: "promotion_requests"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "promotion_requests_to_environment_fkey"
            columns: ["to_environment_id", "org_id"]
            isOneToOne: false
            referencedRelation: "environments"
            referencedColumns: ["id", "org_id"]
          },
          {
            foreignKeyName: "promotion_requests_version_fkey"
            columns: ["version_id", "automation_id", "org_id"]
            isOneToOne: false
            referencedRelation: "config_versions"
            referencedColumns: ["id", "automation_id", "org_id"]
          },
        ]
      }
      saved_filters: {
        Row: {
          created_at: string
          filters: Json
          id: string
          name: string
          org_id: string
          owner_id: string | null
          pinned: boolean
          query: string
          shared: boolean
          updated_at: string
        }
        Insert: {
          created_at?: string
          filters?: Json
          id?: string
          name: string
          org_id: string
          owner_id?: string | null
          pinned?: boolean
          query?: string
          shared?: boolean
          updated_at?: string
        }
        Update: {
          created_at?: string
          filters?: Json
          id?: string
          name?: string
          org_id?: string
          owner_id?: string | null
          pinned?: boolean
          query?: string
          shared?: boolean
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "saved_filters_org_id_fkey"
            columns: ["org_id"]
            isOneToOne: false
            referencedRelation: "orgs"
            referencedColumns: ["id"]
          },
        ]
      }
      schedule_occurrences: {
        Row: {
          applied_at: string | null
          apply_id: string | null
          automation_id: string
          created_at: string
          due_at: string
          environment_id: string | null
          error: string | null
          id: string
          lateness: string | null
          org_id: string
          outcome: Json | null
          phase: string
          schedule_id: string
          status: string
          updated_at: string
          version: number | null
          version_id: string | null
        }
        Insert: {
          applied_at?: string | null
          apply_id?: string | null
          automation_id: string
          created_at?: string
          due_at: string
          environment_id?: string | null
          error?: string | null
          id?: string
          lateness?: string | null
          org_id: string
          outcome?: Json | null
          phase: string
          schedule_id: string
          status?: string
          updated_at?: string
          version?: number | null
          version_id?: string | null
        }
        Update: {
          applied_at?: string | null
          apply_id?: string | null
          automation_id?: string
          created_at?: string
          due_at?: string
          environment_id?: string | null
          error?: string | null
          id?: string
          lateness?: string | null
          org_id?: string
          outcome?: Json | null
          phase?: string
          schedule_id?: string
          status?: string
          updated_at?: string
          version?: number | null
          version_id?: string | null
        }
        Relationships: [
          {
            foreignKeyName: "schedule_occurrences_apply_id_fkey"
            columns: ["apply_id"]
            isOneToOne: false
            referencedRelation: "schedule_occurrences"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "schedule_occurrences_schedule_fkey"
            columns: ["schedule_id", "org_id"]
            isOneToOne: false
            referencedRelation: "schedules"
            referencedColumns: ["id", "org_id"]
          },
        ]
      }
      schedules: {
        Row: {
          action: string
          approved_at: string | null
          approved_by: string | null
          approved_by_email: string | null
          approved_hash: string | null
          author_email: string | null
          author_id: string
          automation_id: string
          change: Json
          change_hash: string
          created_at: string
          cron: string | null
          error: string | null
          force: boolean
          id: string
          materialised_until: string | null
          max_lateness: string
          max_runs: number | null
          message: string
          missed: string
          org_id: string
          revert_after: string | null
          run_at: string | null
          state: string
          timezone: string
          until: string | null
          updated_at: string
        }
        Insert: {
          action: string
          approved_at?: string | null
          approved_by?: string | null
          approved_by_email?: string | null
          approved_hash?: string | null
          author_email?: string | null
          author_id: string
          automation_id: string
          change: Json
          change_hash: string
          created_at?: string
          cron?: string | null
          error?: string | null
          force?: boolean
          id?: string
          materialised_until?: string | null
          max_lateness?: string
          max_runs?: number | null
          message?: string
          missed?: string
          org_id: string
          revert_after?: string | null
          run_at?: string | null
          state?: string
          timezone?: string
          until?: string | null
          updated_at?: string
        }
        Update: {
          action?: string
          approved_at?: string | null
          approved_by?: string | null
          approved_by_email?: string | null
          approved_hash?: string | null
          author_email?: string | null
          author_id?: string
          automation_id?: string
          change?: Json
          change_hash?: string
          created_at?: string
          cron?: string | null
          error?: string | null
          force?: boolean
          id?: string
          materialised_until?: string | null
          max_lateness?: string
          max_runs?: number | null
          message?: string
          missed?: string
          org_id?: string
          revert_after?: string | null
          run_at?: string | null
          state?: string
          timezone?: string
          until?: string | null
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "schedules_automation_fkey"
            columns: ["automation_id", "org_id"]
            isOneToOne: false
            referencedRelation: "automations"
            referencedColumns: ["id", "org_id"]
          },
          {
            foreignKeyName: "schedules_org_id_fkey"
            columns: ["org_id"]
            isOneToOne: false
            referencedRelation: "orgs"
            referencedColumns: ["id"]
          },
        ]
      }
      secret_bindings: {
        Row: {
          attempts: number
          automation_id: string
          backend_id: string
          created_at: string
          created_by: string | null
          entry_id: string
          environment_id: string | null
          error_kind: string | null
          external_version: string | null
          fingerprint: string | null
          id: string
          import_next: boolean
          last_error: string | null
          last_success_at: string | null
          mode: string
          next_check_at: string
          org_id: string
          pushed_secret_id: string | null
          ref: string
          status: string
          updated_at: string
          updated_by: string | null
        }
        Insert: {
          attempts?: number
          automation_id: string
          backend_id: string
          created_at?: string
          created_by?: string | null
          entry_id: string
          environment_id?: string | null
          error_kind?: string | null
          external_version?: string | null
          fingerprint?: string | null
          id?: string
          import_next?: boolean
          last_error?: string | null
          last_success_at?: string | null
          mode: string
          next_check_at?: string
          org_id: string
          pushed_secret_id?: string | null
          ref: string
          status?: string
          updated_at?: string
          updated_by?: string | null
        }
        Update: {
          attempts?: number
          automation_id?: string
          backend_id?: string
          created_at?: string
          created_by?: string | null
          entry_id?: string
          environment_id?: string | null
          error_kind?: string | null
          external_version?: string | null
          fingerprint?: string | null
          id?: string
          import_next?: boolean
          last_error?: string | null
          last_success_at?: string | null
          mode?: string
          next_check_at?: string
          org_id?: string
          pushed_secret_id?: string | null
          ref?: string
          status?: string
          updated_at?: string
          updated_by?: string | null
        }
        Relationships: [
          {
            foreignKeyName: "secret_bindings_automation_fkey"
            columns: ["automation_id", "org_id"]
            isOneToOne: false
            referencedRelation: "automations"
            referencedColumns: ["id", "org_id"]
          },
          {
            foreignKeyName: "secret_bindings_backend_fkey"
            columns: ["backend_id", "org_id"]
            isOneToOne: false
            referencedRelation: "vault_backends"
            referencedColumns: ["id", "org_id"]
          },
          {
            foreignKeyName: "secret_bindings_entry_fkey"
            columns: ["entry_id"]
            isOneToOne: false
            referencedRelation: "entry_secrets"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "secret_bindings_environment_fkey"
            columns: ["environment_id", "org_id"]
            isOneToOne: false
            referencedRelation: "environments"
            referencedColumns: ["id", "org_id"]
          },
        ]
      }
      secret_conflicts: {
        Row: {
          automation_id: string
          binding_id: string
          created_at: string
          external_version: string
          id: string
          org_id: string
          resolution: string | null
          resolved_at: string | null
          resolved_by: string | null
          status: string
          updated_at: string
        }
        Insert: {
          automation_id: string
          binding_id: string
          created_at?: string
          external_version: string
          id?: string
          org_id: string
          resolution?: string | null
          resolved_at?: string | null
          resolved_by?: string | null
          status?: string
          updated_at?: string
        }
        Update: {
          automation_id?: string
          binding_id?: string
          created_at?: string
          external_version?: string
          id?: string
          org_id?: string
          resolution?: string | null
          resolved_at?: string | null
          resolved_by?: string | null
          status?: string
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "secret_conflicts_automation_fkey"
            columns: ["automation_id", "org_id"]
            isOneToOne: false
            referencedRelation: "automations"
            referencedColumns: ["id", "org_id"]
          },
          {
            foreignKeyName: "secret_conflicts_binding_fkey"
            columns: ["binding_id", "org_id"]
            isOneToOne: false
            referencedRelation: "secret_bindings"
            referencedColumns: ["id", "org_id"]
          },
        ]
      }
      template_versions: {
        Row: {
          content: Json
          created_at: string
          created_by: string | null
          id: string
          message: string
          org_id: string
          placeholders: Json
          template_id: string
          updated_at: string
          version: number
        }
        Insert: {
          content: Json
          created_at?: string
          created_by?: string | null
          id?: string
          message?: string
          org_id: string
          placeholders: Json
          template_id: string
          updated_at?: string
          version: number
        }
        Update: {
          content?: Json
          created_at?: string
          created_by?: string | null
          id?: string
          message?: string
          org_id?: string
          placeholders?: Json
          template_id?: string
          updated_at?: string
          version?: number
        }
        Relationships: [
          {
            foreignKeyName: "template_versions_template_fkey"
            columns: ["template_id", "org_id"]
            isOneToOne: false
            referencedRelation: "templates"
            referencedColumns: ["id", "org_id"]
          },
        ]
      }
      templates: {
        Row: {
          content: Json
          created_at: string
          created_by: string | null
          description: string
          id: string
          message: string
          name: string
          org_id: string
          placeholders: Json
          slug: string
          type_id: string
          updated_at: string
          updated_by: string | null
          version: number
        }
        Insert: {
          content?: Json
          created_at?: string
          created_by?: string | null
          description?: string
          id?: string
          message?: string
          name: string
          org_id: string
          placeholders?: Json
          slug: string
          type_id: string
          updated_at?: string
          updated_by?: string | null
          version?: number
        }
        Update: {
          content?: Json
          created_at?: string
          created_by?: string | null
          description?: string
          id?: string
          message?: string
          name?: string
          org_id?: string
          placeholders?: Json
          slug?: string
          type_id?: string
          updated_at?: string
          updated_by?: string | null
          version?: number
        }
        Relationships: [
          {
            foreignKeyName: "templates_org_id_fkey"
            columns: ["org_id"]
            isOneToOne: false
            referencedRelation: "orgs"
            referencedColumns: ["id"]
          },
          {
            foreignKeyName: "templates_type_fkey"
            columns: ["type_id", "org_id"]
            isOneToOne: false
            referencedRelation: "automation_types"
            referencedColumns: ["id", "org_id"]
          },
        ]
      }
      validation_rule_versions: {
        Row: {
          change: string
          changed_by: string | null
          created_at: string
          definition: Json
          id: string
          org_id: string
          rule_id: string
          updated_at: string
          version: number
        }
        Insert: {
          change: string
          changed_by?: string | null
          created_at?: string
          definition: Json
          id?: string
          org_id: string
          rule_id: string
          updated_at?: string
          version: number
        }
        Update: {
          change?: string
          changed_by?: string | null
          created_at?: string
          definition?: Json
          id?: string
          org_id?: string
          rule_id?: string
          updated_at?: string
          version?: number
        }
        Relationships: [
          {
            foreignKeyName: "validation_rule_versions_org_id_fkey"
            columns: ["org_id"]
            isOneToOne: false
            referencedRelation: "orgs"
            referencedColumns: ["id"]
          },
        ]
      }
      validation_rules: {
        Row: {
          created_at: string
          created_by: string | null
          description: string
          enabled: boolean
          environment_ids: string[] | null
          id: string
          key: string | null
          name: string
          org_id: string
          required: boolean
          schema: Json
          scope: string
          section: string | null
          severity: string
          type_id: string
          updated_at: string
          updated_by: string | null
          version: number
        }
        Insert: {
          created_at?: string
          created_by?: string | null
          description?: string
          enabled?: boolean
          environment_ids?: string[] | null
          id?: string
          key?: string | null
          name: string
          org_id: string
          required?: boolean
          schema?: Json
          scope: string
          section?: string | null
          severity?: string
          type_id: string
          updated_at?: string
          updated_by?: string | null
          version?: number
        }
        Update: {
          created_at?: string
          created_by?: string | null
          description?: string
          enabled?: boolean
          environment_ids?: string[] | null
          id?: string
          key?: string | null
          name?: string
          org_id?: string
          required?: boolean
          schema?: Json
          scope?: string
          section?: string | null
          severity?: string
          type_id?: string
          updated_at?: string
          updated_by?: string | null
          version?: number
        }
        Relationships: [
          {
            foreignKeyName: "validation_rules_type_fkey"
            columns: ["type_id", "org_id"]
            isOneToOne: false
            referencedRelation: "automation_types"
            referencedColumns: ["id", "org_id"]
          },
        ]
      }
      validation_status: {
        Row: {
          automation_id: string
          checked_at: string
          created_at: string
          environment_id: string
          errors: Json
          id: string
          org_id: string
          status: string
          updated_at: string
          version: number
          warnings: Json
        }
        Insert: {
          automation_id: string
          checked_at?: string
          created_at?: string
          environment_id: string
          errors?: Json
          id?: string
          org_id: string
          status: string
          updated_at?: string
          version: number
          warnings?: Json
        }
        Update: {
          automation_id?: string
          checked_at?: string
          created_at?: string
          environment_id?: string
          errors?: Json
          id?: string
          org_id?: string
          status?: string
          updated_at?: string
          version?: number
          warnings?: Json
        }
        Relationships: [
          {
            foreignKeyName: "validation_status_automation_fkey"
            columns: ["automation_id", "org_id"]
            isOneToOne: false
            referencedRelation: "automations"
            referencedColumns: ["id", "org_id"]
          },
          {
            foreignKeyName: "validation_status_environment_fkey"
            columns: ["environment_id", "org_id"]
            isOneToOne: false
            referencedRelation: "environments"
            referencedColumns: ["id", "org_id"]
          },
        ]
      }
      vault_backends: {
        Row: {
          config: Json
          created_at: string
          created_by: string | null
          credentials_secret_id: string
          id: string
          kind: string
          name: string
          org_id: string
          test_requested_at: string | null
          test_result: Json | null
          tested_at: string | null
          updated_at: string
          updated_by: string | null
        }
        Insert: {
          config?: Json
          created_at?: string
          created_by?: string | null
          credentials_secret_id: string
          id?: string
          kind: string
          name: string
          org_id: string
          test_requested_at?: string | null
          test_result?: Json | null
          tested_at?: string | null
          updated_at?: string
          updated_by?: string | null
        }
        Update: {
          config?: Json
          created_at?: string
          created_by?: string | null
          credentials_secret_id?: string
          id?: string
          kind?: string
          name?: string
          org_id?: string
          test_requested_at?: string | null
          test_result?: Json | null
          tested_at?: string | null
          updated_at?: string
          updated_by?: string | null
        }
        Relationships: [
          {
            foreignKeyName: "vault_backends_org_id_fkey"
            columns: ["org_id"]
            isOneToOne: false
            referencedRelation: "orgs"
            referencedColumns: ["id"]
          },
        ]
      }
      version_references: {
        Row: {
          created_at: string
          from_automation_id: string
          id: string
          kind: string
          newest: boolean
          org_id: string
          path: string
          ref: string
          to_automation_id: string
          to_key: string | null
          to_org_id: string
          to_section: string | null
          updated_at: string
          version: number
          version_id: string
        }
        Insert: {
          created_at?: string
          from_automation_id: string
          id?: string
          kind: string
          newest?: boolean
          org_id: string
          path: string
          ref: string
          to_automation_id: string
          to_key?: string | null
          to_org_id: string
          to_section?: string | null
          updated_at?: string
          version: number
          version_id: string
        }
        Update: {
          created_at?: string
          from_automation_id?: string
          id?: string
          kind?: string
          newest?: boolean
          org_id?: string
          path?: string
          ref?: string
          to_automation_id?: string
          to_key?: string | null
          to_org_id?: string
          to_section?: string | null
          updated_at?: string
          version?: number
          version_id?: string
        }
        Relationships: [
          {
            foreignKeyName: "version_references_to_automation_fkey"
            columns: ["to_automation_id", "to_org_id"]
            isOneToOne: false
            referencedRelation: "automations"
            referencedColumns: ["id", "org_id"]
          },
          {
            foreignKeyName: "version_references_version_fkey"
            columns: ["version_id"]
            isOneToOne: false
            referencedRelation: "config_versions"
            referencedColumns: ["id"]
          },
        ]
      }
      webhook_allowed_hosts: {
        Row: {
          created_at: string
          host: string
          id: string
          org_id: string
          updated_at: string
        }
        Insert: {
          created_at?: string
          host: string
          id?: string
          org_id: string
          updated_at?: string
        }
        Update: {
          created_at?: string
          host?: string
          id?: string
          org_id?: string
          updated_at?: string
        }
        Relationships: [
          {
            foreignKeyName: "webhook_allowed_hosts_org_id_fkey"
            columns: ["org_id"]
            isOneToOne: false
            referencedRelation: "orgs"
            referencedColumns: ["id"]
          },
        ]
      }
      webhook_endpoints: {
        Row: {
          automation_id: string | null
          created_at: string
          created_by: string | null
          description: string
          disabled_at: string | null
          disabled_reason: string | null
          enabled: boolean
          environment_id: string | null
          event_types: string[]
          id: string
          org_id: string
          updated_at: string
          updated_by: string | null
          url: string
        }
        Insert: {
          automation_id?: string | null
          created_at?: string
          created_by?: string | null
          description?: string
          disabled_at?: string | null
          disabled_reason?: string | null
          enabled?: boolean
          environment_id?: string | null
          event_types?: string[]
          id?: string
          org_id: string
          updated_at?: string
          updated_by?: string | null
          url: string
        }
        Update: {
          automation_id?: string | null
          created_at?: string
          created_by?: string | null
          description?: string
          disabled_at?: string | null
          disabled_reason?: string | null
          enabled?: boolean
          environment_id?: string | null
          event_types?: string[]
          id?: string
          org_id?: string
          updated_at?: string
          updated_by?: string | null
          url?: string
        }
        Relationships: [
          {
            foreignKeyName: "webhook_endpoints_automation_fkey"
            columns: ["automation_id", "org_id"]
            isOneToOne: false
            referencedRelation: "automations"
            referencedColumns: ["id", "org_id"]
          },
          {
            foreignKeyName: "webhook_endpoints_environment_fkey"
            columns: ["environment_id", "org_id"]
            isOneToOne: false
            referencedRelation: "environments"
            referencedColumns: ["id", "org_id"]
          },
          {
            foreignKeyName: "webhook_endpoints_org_id_fkey"
            columns: ["org_id"]
            isOneToOne: false
            referencedRelation: "orgs"
            referencedColumns: ["id"]
          },
        ]
      }
    }
    Views: {
      [_ in never]: never
    }
    Functions: {
      accept_invitation: {
        Args: { invitation_id: string }
        Returns: {
          created_at: string
          id: string
          invited_by: string | null
          org_id: string
          role: Database["cfg"]["Enums"]["org_role"]
          updated_at: string
          user_id: string
        }
        SetofOptions: {
          from: "*"
          to: "org_members"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      add_automation_type: {
        Args: {
          description?: string
          name: string
          org_id: string
          slug: string
        }
        Returns: {
          created_at: string
          description: string
          id: string
          name: string
          org_id: string
          slug: string
          updated_at: string
        }
        SetofOptions: {
          from: "*"
          to: "automation_types"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      add_schedule: {
        Args: {
          at?: string
          automation_id: string
          change: Json
          cron?: string
          force?: boolean
          max_lateness?: string
          max_runs?: number
          message?: string
          missed?: string
          revert_after?: string
          revert_at?: string
          timezone?: string
          until?: string
        }
        Returns: Json
      }
      add_template: {
        Args: {
          content: Json
          description?: string
          name: string
          org_id: string
          placeholders?: Json
          slug: string
          type: string
        }
        Returns: {
          content: Json
          created_at: string
          created_by: string | null
          description: string
          id: string
          message: string
          name: string
          org_id: string
          placeholders: Json
          slug: string
          type_id: string
          updated_at: string
          updated_by: string | null
          version: number
        }
        SetofOptions: {
          from: "*"
          to: "templates"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      add_validation_rule: {
        Args: { definition: Json; type_id: string }
        Returns: {
          created_at: string
          created_by: string | null
          description: string
          enabled: boolean
          environment_ids: string[] | null
          id: string
          key: string | null
          name: string
          org_id: string
          required: boolean
          schema: Json
          scope: string
          section: string | null
          severity: string
          type_id: string
          updated_at: string
          updated_by: string | null
          version: number
        }
        SetofOptions: {
          from: "*"
          to: "validation_rules"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      add_vault_backend: {
        Args: {
          config: Json
          credentials: Json
          kind: string
          name: string
          org_id: string
        }
        Returns: {
          config: Json
          created_at: string
          created_by: string | null
          credentials_secret_id: string
          id: string
          kind: string
          name: string
          org_id: string
          test_requested_at: string | null
          test_result: Json | null
          tested_at: string | null
          updated_at: string
          updated_by: string | null
        }
        SetofOptions: {
          from: "*"
          to: "vault_backends"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      allow_webhook_host: {
        Args: { host: string; org_id: string }
        Returns: {
          created_at: string
          host: string
          id: string
          org_id: string
          updated_at: string
        }
        SetofOptions: {
          from: "*"
          to: "webhook_allowed_hosts"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      analytics_active_users: {
        Args: { org_id: string; since?: string; until?: string }
        Returns: Json
      }
      analytics_changes: {
        Args: {
          author?: string
          automation_id?: string
          bucket?: string
          environment?: string
          org_id: string
          since?: string
          until?: string
        }
        Returns: Json
      }
      analytics_promotions: {
        Args: { org_id: string; since?: string; until?: string }
        Returns: Json
      }
      analytics_top_automations: {
        Args: {
          max_rows?: number
          org_id: string
          since?: string
          until?: string
        }
        Returns: Json
      }
      analytics_validation_failures: {
        Args: {
          bucket?: string
          environment?: string
          org_id: string
          since?: string
          until?: string
        }
        Returns: Json
      }
      apply_promotion: {
        Args: { request_id: string }
        Returns: {
          applied_at: string | null
          automation_id: string
          created_at: string
          decided_at: string | null
          decided_by: string | null
          decided_by_email: string | null
          decision_comment: string | null
          from_environment_id: string
          id: string
          message: string
          org_id: string
          requested_by: string | null
          requested_by_email: string | null
          skip_reason: string | null
          status: Database["cfg"]["Enums"]["promotion_status"]
          superseded_by: string | null
          target_version: number | null
          to_environment_id: string
          updated_at: string
          version: number
          version_id: string
        }
        SetofOptions: {
          from: "*"
          to: "promotion_requests"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      apply_template: {
        Args: {
          automation_id: string
          dry_run?: boolean
          expected_version?: number
          version?: number
        }
        Returns: Json
      }
      approve_environment_change: {
        Args: { comment?: string; request_id: string }
        Returns: {
          applied_at: string | null
          before: Json
          change: Json
          created_at: string
          decided_at: string | null
          decided_by: string | null
          decided_by_email: string | null
          decision_comment: string | null
          environment_id: string | null
          environment_slug: string
          id: string
          org_id: string
          reason: string
          requested_by: string | null
          requested_by_email: string | null
          status: string
          updated_at: string
        }
        SetofOptions: {
          from: "*"
          to: "environment_change_requests"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      approve_promotion: {
        Args: { apply?: boolean; comment?: string; request_id: string }
        Returns: {
          applied_at: string | null
          automation_id: string
          created_at: string
          decided_at: string | null
          decided_by: string | null
          decided_by_email: string | null
          decision_comment: string | null
          from_environment_id: string
          id: string
          message: string
          org_id: string
          requested_by: string | null
          requested_by_email: string | null
          skip_reason: string | null
          status: Database["cfg"]["Enums"]["promotion_status"]
          superseded_by: string | null
          target_version: number | null
          to_environment_id: string
          updated_at: string
          version: number
          version_id: string
        }
        SetofOptions: {
          from: "*"
          to: "promotion_requests"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      approve_schedule: { Args: { schedule_id: string }; Returns: Json }
      audit_events: {
        Args: {
          actor?: string
          automation_id?: string
          max_rows?: number
          org_id: string
          since?: string
          until?: string
        }
        Returns: {
          actor_email: string | null
          actor_id: string | null
          actor_role: string
          automation_id: string | null
          created_at: string
          id: number
          new_values: Json | null
          old_values: Json | null
          operation: string
          org_id: string
          readable_by: Database["cfg"]["Enums"]["org_role"]
          row_id: string
          table_name: string
          txid: number
        }[]
        SetofOptions: {
          from: "*"
          to: "audit_log"
          isOneToOne: false
          isSetofReturn: true
        }
      }
      automation_origin: { Args: { automation_id: string }; Returns: Json }
      bind_secret: {
        Args: {
          automation_id: string
          backend_id: string
          environment_id?: string
          key: string
          mode?: string
          ref: string
          section: string
        }
        Returns: {
          attempts: number
          automation_id: string
          backend_id: string
          created_at: string
          created_by: string | null
          entry_id: string
          environment_id: string | null
          error_kind: string | null
          external_version: string | null
          fingerprint: string | null
          id: string
          import_next: boolean
          last_error: string | null
          last_success_at: string | null
          mode: string
          next_check_at: string
          org_id: string
          pushed_secret_id: string | null
          ref: string
          status: string
          updated_at: string
          updated_by: string | null
        }
        SetofOptions: {
          from: "*"
          to: "secret_bindings"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      bulk_apply: {
        Args: {
          action: string
          options?: Json
          org_id: string
          selection: Json
        }
        Returns: Json
      }
      bulk_continue: { Args: { operation_id: string }; Returns: Json }
      cancel_bulk_operation: { Args: { operation_id: string }; Returns: Json }
      cancel_schedule: { Args: { schedule_id: string }; Returns: Json }
      changes_since: {
        Args: {
          after?: string
          automation_id?: string
          max_rows?: number
          org_id: string
        }
        Returns: Json
      }
      clone_automation: {
        Args: {
          copy_secrets?: boolean
          name: string
          slug: string
          source_automation_id: string
          target_org_id?: string
          version?: number
        }
        Returns: Json
      }
      collect_revealed_secret: { Args: { request_id: string }; Returns: Json }
      config_history: {
        Args: {
          automation_id: string
          before_version?: number
          max_rows?: number
        }
        Returns: {
          author_email: string
          author_id: string
          changes: Json
          content_hash: string
          created_at: string
          id: string
          kind: string
          message: string
          parent_version: number
          restored_from: number
          version: number
        }[]
      }
      create_automation: {
        Args: {
          description?: string
          name: string
          org_id: string
          slug: string
          tags?: string[]
          type?: string
        }
        Returns: {
          created_at: string
          created_by: string | null
          description: string
          id: string
          name: string
          org_id: string
          slug: string
          status: Database["cfg"]["Enums"]["automation_status"]
          tags: string[]
          type: string
          updated_at: string
          updated_by: string | null
        }
        SetofOptions: {
          from: "*"
          to: "automations"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      create_automation_from_template: {
        Args: {
          name: string
          org_id: string
          slug: string
          template_id: string
          values?: Json
          version?: number
        }
        Returns: Json
      }
      create_org: {
        Args: { name: string; slug: string }
        Returns: {
          created_at: string
          created_by: string | null
          id: string
          name: string
          secret_reveal_role: Database["cfg"]["Enums"]["org_role"]
          slug: string
          updated_at: string
        }
        SetofOptions: {
          from: "*"
          to: "orgs"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      create_webhook_endpoint: {
        Args: {
          automation_id?: string
          description?: string
          environment_id?: string
          event_types?: string[]
          org_id: string
          url: string
        }
        Returns: Json
      }
      decide_bulk_promotions: {
        Args: { approve: boolean; comment?: string; operation_id: string }
        Returns: Json
      }
      delete_automation: {
        Args: { automation_id: string; force?: boolean }
        Returns: {
          created_at: string
          created_by: string | null
          description: string
          id: string
          name: string
          org_id: string
          slug: string
          status: Database["cfg"]["Enums"]["automation_status"]
          tags: string[]
          type: string
          updated_at: string
          updated_by: string | null
        }
        SetofOptions: {
          from: "*"
          to: "automations"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      delete_saved_filter: {
        Args: { filter_id: string }
        Returns: {
          created_at: string
          filters: Json
          id: string
          name: string
          org_id: string
          owner_id: string | null
          pinned: boolean
          query: string
          shared: boolean
          updated_at: string
        }
        SetofOptions: {
          from: "*"
          to: "saved_filters"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      delete_webhook_endpoint: {
        Args: { endpoint_id: string }
        Returns: {
          automation_id: string | null
          created_at: string
          created_by: string | null
          description: string
          disabled_at: string | null
          disabled_reason: string | null
          enabled: boolean
          environment_id: string | null
          event_types: string[]
          id: string
          org_id: string
          updated_at: string
          updated_by: string | null
          url: string
        }
        SetofOptions: {
          from: "*"
          to: "webhook_endpoints"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      dependency_graph: {
        Args: {
          automation_id?: string
          env?: string
          org_id: string
          version?: number
        }
        Returns: Json
      }
      deployment_status: {
        Args: { automation_id?: string; org_id: string }
        Returns: {
          drift: boolean
          environments: Json
          id: string
          latest_version: number
          name: string
          pending_requests: number
          slug: string
        }[]
      }
      diff_versions: {
        Args: { from_version_id: string; to_version_id: string }
        Returns: Json
      }
      disallow_webhook_host: {
        Args: { host: string; org_id: string }
        Returns: {
          created_at: string
          host: string
          id: string
          org_id: string
          updated_at: string
        }
        SetofOptions: {
          from: "*"
          to: "webhook_allowed_hosts"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      edit_schedule: {
        Args: { fields: Json; schedule_id: string }
        Returns: Json
      }
      edit_template: {
        Args: {
          content?: Json
          description?: string
          expected_version?: number
          message?: string
          name?: string
          placeholders?: Json
          template_id: string
        }
        Returns: {
          content: Json
          created_at: string
          created_by: string | null
          description: string
          id: string
          message: string
          name: string
          org_id: string
          placeholders: Json
          slug: string
          type_id: string
          updated_at: string
          updated_by: string | null
          version: number
        }
        SetofOptions: {
          from: "*"
          to: "templates"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      edit_validation_rule: {
        Args: { changes: Json; rule_id: string }
        Returns: {
          created_at: string
          created_by: string | null
          description: string
          enabled: boolean
          environment_ids: string[] | null
          id: string
          key: string | null
          name: string
          org_id: string
          required: boolean
          schema: Json
          scope: string
          section: string | null
          severity: string
          type_id: string
          updated_at: string
          updated_by: string | null
          version: number
        }
        SetofOptions: {
          from: "*"
          to: "validation_rules"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      export_automations: {
        Args: {
          env?: string
          include_secrets?: boolean
          org_id: string
          selection: Json
          version?: number
        }
        Returns: Json
      }
      find_automation: {
        Args: { org_ref?: string; ref: string }
        Returns: {
          created_at: string
          created_by: string | null
          description: string
          id: string
          name: string
          org_id: string
          slug: string
          status: Database["cfg"]["Enums"]["automation_status"]
          tags: string[]
          type: string
          updated_at: string
          updated_by: string | null
        }
        SetofOptions: {
          from: "*"
          to: "automations"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      find_environment: {
        Args: { org_id: string; slug: string }
        Returns: {
          created_at: string
          id: string
          name: string
          org_id: string
          position: number
          requires_approval: boolean
          slug: string
          updated_at: string
        }
        SetofOptions: {
          from: "*"
          to: "environments"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      find_org: {
        Args: { ref: string }
        Returns: {
          created_at: string
          created_by: string | null
          id: string
          name: string
          secret_reveal_role: Database["cfg"]["Enums"]["org_role"]
          slug: string
          updated_at: string
        }
        SetofOptions: {
          from: "*"
          to: "orgs"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      get_bulk_operation: { Args: { operation_id: string }; Returns: Json }
      get_config: {
        Args: { automation_id: string; version?: number }
        Returns: Json
      }
      get_template: {
        Args: { template_id: string; version?: number }
        Returns: Json
      }
      impact: {
        Args: {
          automation_id: string
          cursor?: string
          env?: string
          keys?: string[]
          max_depth?: number
          max_rows?: number
        }
        Returns: Json
      }
      import_automations: {
        Args: {
          base_versions?: Json
          document: Json
          dry_run?: boolean
          message?: string
          on_conflict?: string
          org_id: string
        }
        Returns: Json
      }
      invite_member: {
        Args: {
          email: string
          expires_in?: string
          org_id: string
          role?: Database["cfg"]["Enums"]["org_role"]
        }
        Returns: {
          accepted_at: string | null
          accepted_by: string | null
          created_at: string
          email: string
          expires_at: string
          id: string
          invited_by: string | null
          invited_by_email: string | null
          org_id: string
          revoked_at: string | null
          revoked_by: string | null
          role: Database["cfg"]["Enums"]["org_role"]
          updated_at: string
        }
        SetofOptions: {
          from: "*"
          to: "org_invitations"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      list_automation_types: {
        Args: { org_id: string }
        Returns: {
          automations: number
          description: string
          id: string
          name: string
          rules: number
          slug: string
        }[]
      }
      list_automations: {
        Args: { org_id: string }
        Returns: {
          created_at: string
          created_by: string | null
          description: string
          id: string
          name: string
          org_id: string
          slug: string
          status: Database["cfg"]["Enums"]["automation_status"]
          tags: string[]
          type: string
          updated_at: string
          updated_by: string | null
        }[]
        SetofOptions: {
          from: "*"
          to: "automations"
          isOneToOne: false
          isSetofReturn: true
        }
      }
      list_bulk_operations: {
        Args: { max_count?: number; org_id: string }
        Returns: {
          action: string
          atomic: boolean
          created_at: string
          created_by_email: string
          done: number
          failed: number
          finished_at: string
          id: string
          not_found: number
          rolled_back: number
          status: string
          succeeded: number
          total: number
          unchanged: number
        }[]
      }
      list_environment_changes: {
        Args: { org_id: string; with_status?: string }
        Returns: {
          applied_at: string | null
          before: Json
          change: Json
          created_at: string
          decided_at: string | null
          decided_by: string | null
          decided_by_email: string | null
          decision_comment: string | null
          environment_id: string | null
          environment_slug: string
          id: string
          org_id: string
          reason: string
          requested_by: string | null
          requested_by_email: string | null
          status: string
          updated_at: string
        }[]
        SetofOptions: {
          from: "*"
          to: "environment_change_requests"
          isOneToOne: false
          isSetofReturn: true
        }
      }
      list_environments: {
        Args: { org_id: string }
        Returns: {
          created_at: string
          id: string
          name: string
          org_id: string
          position: number
          requires_approval: boolean
          slug: string
          updated_at: string
        }[]
        SetofOptions: {
          from: "*"
          to: "environments"
          isOneToOne: false
          isSetofReturn: true
        }
      }
      list_invitations: {
        Args: { org_id: string }
        Returns: {
          accepted_at: string
          created_at: string
          email: string
          expires_at: string
          id: string
          invited_by_email: string
          revoked_at: string
          role: Database["cfg"]["Enums"]["org_role"]
          status: string
        }[]
      }
      list_members: {
        Args: { org_id: string }
        Returns: {
          created_at: string
          email: string
          role: Database["cfg"]["Enums"]["org_role"]
          user_id: string
        }[]
      }
      list_promotion_requests: {
        Args: {
          for_automation_id?: string
          org_id: string
          with_status?: Database["cfg"]["Enums"]["promotion_status"]
        }
        Returns: {
          applied_at: string
          automation: string
          automation_id: string
          created_at: string
          decided_at: string
          decided_by_email: string
          decision_comment: string
          from_env: string
          id: string
          message: string
          requested_by_email: string
          skip_reason: string
          status: Database["cfg"]["Enums"]["promotion_status"]
          superseded_by: string
          to_env: string
          version: number
        }[]
      }
      list_saved_filters: {
        Args: { org_id: string }
        Returns: {
          created_at: string
          filters: Json
          id: string
          name: string
          org_id: string
          owner_id: string | null
          pinned: boolean
          query: string
          shared: boolean
          updated_at: string
        }[]
        SetofOptions: {
          from: "*"
          to: "saved_filters"
          isOneToOne: false
          isSetofReturn: true
        }
      }
      list_schedules: {
        Args: {
          automation_id?: string
          include_finished?: boolean
          org_id: string
          schedule_id?: string
        }
        Returns: {
          action: string
          approved_by_email: string
          armed: boolean
          author_email: string
          author_id: string
          automation: string
          change: Json
          created_at: string
          cron: string
          environment: string
          error: string
          force: boolean
          id: string
          max_lateness: string
          max_runs: number
          message: string
          missed: string
          needs_approval: boolean
          next_due_at: string
          revert_after: string
          run_at: string
          state: string
          timezone: string
          until: string
          updated_at: string
        }[]
      }
      list_secret_bindings: {
        Args: { automation_id: string }
        Returns: {
          backend: string
          environment: string
          error_kind: string
          external_version: string
          fingerprint: string
          id: string
          key: string
          last_error: string
          last_success_at: string
          mode: string
          next_check_at: string
          ref: string
          section: string
          status: string
        }[]
      }
      list_secret_conflicts: {
        Args: { include_resolved?: boolean; org_id: string }
        Returns: {
          automation_id: string
          binding_id: string
          created_at: string
          external_version: string
          id: string
          org_id: string
          resolution: string | null
          resolved_at: string | null
          resolved_by: string | null
          status: string
          updated_at: string
        }[]
        SetofOptions: {
          from: "*"
          to: "secret_conflicts"
          isOneToOne: false
          isSetofReturn: true
        }
      }
      list_secrets: {
        Args: { automation_id: string }
        Returns: {
          expires_at: string
          key: string
          rotate_every: string
          rotation_due: boolean
          rotation_due_at: string
          section: string
          value_set_at: string
        }[]
      }
      list_templates: {
        Args: { org_id: string }
        Returns: {
          automations: number
          description: string
          id: string
          name: string
          placeholders: number
          slug: string
          type: string
          version: number
        }[]
      }
      list_validation_rules: {
        Args: { org_id: string; type_id?: string }
        Returns: {
          description: string
          enabled: boolean
          environments: string[]
          id: string
          key: string
          name: string
          required: boolean
          schema: Json
          scope: string
          section: string
          severity: string
          type: string
          version: number
        }[]
      }
      list_vault_backends: {
        Args: { org_id: string }
        Returns: {
          config: Json
          created_at: string
          created_by: string | null
          credentials_secret_id: string
          id: string
          kind: string
          name: string
          org_id: string
          test_requested_at: string | null
          test_result: Json | null
          tested_at: string | null
          updated_at: string
          updated_by: string | null
        }[]
        SetofOptions: {
          from: "*"
          to: "vault_backends"
          isOneToOne: false
          isSetofReturn: true
        }
      }
      list_webhook_allowed_hosts: {
        Args: { org_id: string }
        Returns: {
          created_at: string
          host: string
          id: string
          org_id: string
          updated_at: string
        }[]
        SetofOptions: {
          from: "*"
          to: "webhook_allowed_hosts"
          isOneToOne: false
          isSetofReturn: true
        }
      }
      list_webhook_endpoints: {
        Args: { org_id: string }
        Returns: {
          automation_id: string | null
          created_at: string
          created_by: string | null
          description: string
          disabled_at: string | null
          disabled_reason: string | null
          enabled: boolean
          environment_id: string | null
          event_types: string[]
          id: string
          org_id: string
          updated_at: string
          updated_by: string | null
          url: string
        }[]
        SetofOptions: {
          from: "*"
          to: "webhook_endpoints"
          isOneToOne: false
          isSetofReturn: true
        }
      }
      merge_config: {
        Args: { base_version_id: string; mine: Json; theirs_version_id: string }
        Returns: Json
      }
      my_invitations: {
        Args: never
        Returns: {
          created_at: string
          expires_at: string
          id: string
          org_id: string
          role: Database["cfg"]["Enums"]["org_role"]
        }[]
      }
      my_orgs: {
        Args: never
        Returns: {
          created_at: string
          id: string
          name: string
          role: Database["cfg"]["Enums"]["org_role"]
          slug: string
        }[]
      }
      patch_config: {
        Args: {
          automation_id: string
          dry_run?: boolean
          expected_version?: number
          message?: string
          set?: Json
          unset?: Json
        }
        Returns: Json
      }
      pause_schedule: { Args: { schedule_id: string }; Returns: Json }
      promote: {
        Args: {
          automation_id: string
          dry_run?: boolean
          expected_version?: number
          from_env: string
          message?: string
          reason?: string
          to_env: string
        }
        Returns: Json
      }
      quick_find: {
        Args: { max_rows?: number; query: string }
        Returns: {
          automation: string
          automation_id: string
          key: string
          kind: string
          label: string
          org: string
          org_id: string
          score: number
          section: string
          target: string
        }[]
      }
      reindex_search: { Args: { org_id: string }; Returns: number }
      reject_environment_change: {
        Args: { reason: string; request_id: string }
        Returns: {
          applied_at: string | null
          before: Json
          change: Json
          created_at: string
          decided_at: string | null
          decided_by: string | null
          decided_by_email: string | null
          decision_comment: string | null
          environment_id: string | null
          environment_slug: string
          id: string
          org_id: string
          reason: string
          requested_by: string | null
          requested_by_email: string | null
          status: string
          updated_at: string
        }
        SetofOptions: {
          from: "*"
          to: "environment_change_requests"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      reject_promotion: {
        Args: { reason: string; request_id: string }
        Returns: {
          applied_at: string | null
          automation_id: string
          created_at: string
          decided_at: string | null
          decided_by: string | null
          decided_by_email: string | null
          decision_comment: string | null
          from_environment_id: string
          id: string
          message: string
          org_id: string
          requested_by: string | null
          requested_by_email: string | null
          skip_reason: string | null
          status: Database["cfg"]["Enums"]["promotion_status"]
          superseded_by: string | null
          target_version: number | null
          to_environment_id: string
          updated_at: string
          version: number
          version_id: string
        }
        SetofOptions: {
          from: "*"
          to: "promotion_requests"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      remove_automation_type: { Args: { type_id: string }; Returns: undefined }
      remove_member: {
        Args: { org_id: string; user_id: string }
        Returns: {
          created_at: string
          id: string
          invited_by: string | null
          org_id: string
          role: Database["cfg"]["Enums"]["org_role"]
          updated_at: string
          user_id: string
        }
        SetofOptions: {
          from: "*"
          to: "org_members"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      remove_validation_rule: { Args: { rule_id: string }; Returns: undefined }
      remove_vault_backend: { Args: { backend_id: string }; Returns: undefined }
      request_environment_change: {
        Args: { change: Json; environment_id: string; reason?: string }
        Returns: {
          applied_at: string | null
          before: Json
          change: Json
          created_at: string
          decided_at: string | null
          decided_by: string | null
          decided_by_email: string | null
          decision_comment: string | null
          environment_id: string | null
          environment_slug: string
          id: string
          org_id: string
          reason: string
          requested_by: string | null
          requested_by_email: string | null
          status: string
          updated_at: string
        }
        SetofOptions: {
          from: "*"
          to: "environment_change_requests"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      resolve_config: {
        Args: { automation_id: string; env: string; reveal?: boolean }
        Returns: Json
      }
      resolve_secret_conflict: {
        Args: { conflict_id: string; resolution: string }
        Returns: {
          automation_id: string
          binding_id: string
          created_at: string
          external_version: string
          id: string
          org_id: string
          resolution: string | null
          resolved_at: string | null
          resolved_by: string | null
          status: string
          updated_at: string
        }
        SetofOptions: {
          from: "*"
          to: "secret_conflicts"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      resume_schedule: { Args: { schedule_id: string }; Returns: Json }
      retry_failed_webhook_deliveries: {
        Args: { endpoint_id: string; since: string }
        Returns: number
      }
      retry_webhook_delivery: {
        Args: { delivery_id: number }
        Returns: {
          endpoint_id: string
          id: number
          next_attempt_at: string
          status: string
        }[]
      }
      reveal_secret: {
        Args: {
          automation_id: string
          key: string
          section: string
          version?: number
        }
        Returns: Json
      }
      revoke_invitation: {
        Args: { invitation_id: string }
        Returns: {
          accepted_at: string | null
          accepted_by: string | null
          created_at: string
          email: string
          expires_at: string
          id: string
          invited_by: string | null
          invited_by_email: string | null
          org_id: string
          revoked_at: string | null
          revoked_by: string | null
          role: Database["cfg"]["Enums"]["org_role"]
          updated_at: string
        }
        SetofOptions: {
          from: "*"
          to: "org_invitations"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      rollback: {
        Args: {
          automation_id: string
          expected_version?: number
          message?: string
          to_version: number
        }
        Returns: Json
      }
      rotate_webhook_secret: { Args: { endpoint_id: string }; Returns: Json }
      run_saved_filter: {
        Args: { after?: string; filter_id: string; max_rows?: number }
        Returns: Json
      }
      save_config: {
        Args: {
          automation_id: string
          content: Json
          dry_run?: boolean
          expected_version: number
          message?: string
        }
        Returns: Json
      }
      save_filter: {
        Args: {
          filter_id?: string
          filters?: Json
          name: string
          org_id: string
          pinned?: boolean
          query?: string
          shared?: boolean
        }
        Returns: {
          created_at: string
          filters: Json
          id: string
          name: string
          org_id: string
          owner_id: string | null
          pinned: boolean
          query: string
          shared: boolean
          updated_at: string
        }
        SetofOptions: {
          from: "*"
          to: "saved_filters"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      schedule_timeline: {
        Args: {
          automation_id?: string
          env?: string
          from?: string
          org_id: string
          to?: string
        }
        Returns: {
          action: string
          applied_at: string
          author_email: string
          automation: string
          due_at: string
          environment: string
          error: string
          lateness: string
          message: string
          occurrence_id: string
          outcome: Json
          phase: string
          preview: Json
          schedule_id: string
          status: string
          version: number
        }[]
      }
      search: {
        Args: {
          after?: string
          filters?: Json
          max_rows?: number
          org_id?: string
          query?: string
        }
        Returns: Json
      }
      select_automations: {
        Args: { org_id: string; selection: Json }
        Returns: {
          automation_id: string
          found: boolean
          ord: number
          slug: string
        }[]
      }
      send_test_webhook: {
        Args: { endpoint_id: string; payload?: Json }
        Returns: number
      }
      set_member_role: {
        Args: {
          org_id: string
          role: Database["cfg"]["Enums"]["org_role"]
          user_id: string
        }
        Returns: {
          created_at: string
          id: string
          invited_by: string | null
          org_id: string
          role: Database["cfg"]["Enums"]["org_role"]
          updated_at: string
          user_id: string
        }
        SetofOptions: {
          from: "*"
          to: "org_members"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      set_secret_reveal_role: {
        Args: { min_role: Database["cfg"]["Enums"]["org_role"]; org_id: string }
        Returns: {
          created_at: string
          created_by: string | null
          id: string
          name: string
          secret_reveal_role: Database["cfg"]["Enums"]["org_role"]
          slug: string
          updated_at: string
        }
        SetofOptions: {
          from: "*"
          to: "orgs"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      set_secret_rotation: {
        Args: {
          automation_id: string
          expires_at?: string
          key: string
          rotate_every?: string
          section: string
        }
        Returns: Json
      }
      set_webhook_endpoint_enabled: {
        Args: { enabled: boolean; endpoint_id: string }
        Returns: {
          automation_id: string | null
          created_at: string
          created_by: string | null
          description: string
          disabled_at: string | null
          disabled_reason: string | null
          enabled: boolean
          environment_id: string | null
          event_types: string[]
          id: string
          org_id: string
          updated_at: string
          updated_by: string | null
          url: string
        }
        SetofOptions: {
          from: "*"
          to: "webhook_endpoints"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      sync_secret_binding: {
        Args: { binding_id: string }
        Returns: {
          attempts: number
          automation_id: string
          backend_id: string
          created_at: string
          created_by: string | null
          entry_id: string
          environment_id: string | null
          error_kind: string | null
          external_version: string | null
          fingerprint: string | null
          id: string
          import_next: boolean
          last_error: string | null
          last_success_at: string | null
          mode: string
          next_check_at: string
          org_id: string
          pushed_secret_id: string | null
          ref: string
          status: string
          updated_at: string
          updated_by: string | null
        }
        SetofOptions: {
          from: "*"
          to: "secret_bindings"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      template_drift: { Args: { automation_id: string }; Returns: Json }
      test_validation_rule: {
        Args: { definition: Json; rule_id?: string; type_id: string }
        Returns: {
          automation: string
          automation_id: string
          environment: string
          message: string
          path: string
          severity: string
          version: number
        }[]
      }
      test_vault_backend: {
        Args: { backend_id: string }
        Returns: {
          config: Json
          created_at: string
          created_by: string | null
          credentials_secret_id: string
          id: string
          kind: string
          name: string
          org_id: string
          test_requested_at: string | null
          test_result: Json | null
          tested_at: string | null
          updated_at: string
          updated_by: string | null
        }
        SetofOptions: {
          from: "*"
          to: "vault_backends"
          isOneToOne: true
          isSetofReturn: false
        }
      }
      unbind_secret: { Args: { binding_id: string }; Returns: undefined }
      validate_config: {
        Args: { automation_id: string; environment?: string }
        Returns: Json
      }
      webhook_deliveries: {
        Args: {
          endpoint_id: string
          max_rows?: number
          since?: string
          with_status?: string
        }
        Returns: {
          attempt_count: number
          completed_at: string
          created_at: string
          event_id: number
          event_type: string
          id: number
          last_attempt_at: string
          last_error: string
          last_status_code: number
          next_attempt_at: string
          status: string
        }[]
      }
      webhook_delivery_attempts: {
        Args: { delivery_id: number }
        Returns: {
          attempt: number
          created_at: string
          error: string
          latency_ms: number
          response_excerpt: string
          status_code: number
          worker: string
        }[]
      }
      webhook_event_types: {
        Args: never
        Returns: {
          description: string
          type: string
        }[]
      }
    }
    Enums: {
      automation_status: "active" | "paused" | "archived"
      org_role: "viewer" | "editor" | "admin"
      promotion_status:
        "pending" | "approved" | "applied" | "rejected" | "superseded"
    }
    CompositeTypes: {
      [_ in never]: never
    }
  }
}

type DatabaseWithoutInternals = Omit<Database, "__InternalSupabase">

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, "cfg">]

export type Tables<
  DefaultSchemaTableNameOrOptions extends
    | keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
        DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
      DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])[TableName] extends {
      Row: infer R
    }
    ? R
    : never
  : DefaultSchemaTableNameOrOptions extends keyof (DefaultSchema["Tables"] &
        DefaultSchema["Views"])
    ? (DefaultSchema["Tables"] &
        DefaultSchema["Views"])[DefaultSchemaTableNameOrOptions] extends {
        Row: infer R
      }
      ? R
      : never
    : never

export type TablesInsert<
  DefaultSchemaTableNameOrOptions extends
    keyof DefaultSchema["Tables"] | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Insert: infer I
    }
    ? I
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
        Insert: infer I
      }
      ? I
      : never
    : never

export type TablesUpdate<
  DefaultSchemaTableNameOrOptions extends
    keyof DefaultSchema["Tables"] | { schema: keyof DatabaseWithoutInternals },
  TableName extends (DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never) = never,
> = DefaultSchemaTableNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Update: infer U
    }
    ? U
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
    ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
        Update: infer U
      }
      ? U
      : never
    : never

export type Enums<
  DefaultSchemaEnumNameOrOptions extends
    keyof DefaultSchema["Enums"] | { schema: keyof DatabaseWithoutInternals },
  EnumName extends (DefaultSchemaEnumNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"]
    : never) = never,
> = DefaultSchemaEnumNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"][EnumName]
  : DefaultSchemaEnumNameOrOptions extends keyof DefaultSchema["Enums"]
    ? DefaultSchema["Enums"][DefaultSchemaEnumNameOrOptions]
    : never

export type CompositeTypes<
  PublicCompositeTypeNameOrOptions extends
    | keyof DefaultSchema["CompositeTypes"]
    | { schema: keyof DatabaseWithoutInternals },
  CompositeTypeName extends (PublicCompositeTypeNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"]
    : never) = never,
> = PublicCompositeTypeNameOrOptions extends {
  schema: keyof DatabaseWithoutInternals
}
  ? DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"][CompositeTypeName]
  : PublicCompositeTypeNameOrOptions extends keyof DefaultSchema["CompositeTypes"]
    ? DefaultSchema["CompositeTypes"][PublicCompositeTypeNameOrOptions]
    : never

export const Constants = {
  cfg: {
    Enums: {
      automation_status: ["active", "paused", "archived"],
      org_role: ["viewer", "editor", "admin"],
      promotion_status: [
        "pending",
        "approved",
        "applied",
        "rejected",
        "superseded",
      ],
    },
  },
} as const

