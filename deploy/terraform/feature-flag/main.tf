# Example remediation module: switch a feature flag off (or on) by writing a flag file that the
# service watches. It needs no provider download: terraform_data is built into Terraform.
#
# A TerraformAction names it as module "feature-flag"; rollback `previous` puts the flag back.

variable "flags_dir" {
  type        = string
  description = "Directory the service reads its flag files from."
}

variable "flag" {
  type        = string
  description = "Flag name; it becomes a file name, so only a safe alphabet is accepted."

  validation {
    # Alert labels can reach this variable: refuse anything a shell or a path could misread.
    condition     = can(regex("^[a-z0-9][a-z0-9_-]{0,62}$", var.flag))
    error_message = "flag must be lower-case letters, digits, '_' or '-'."
  }
}

variable "enabled" {
  type        = bool
  description = "The value to write."
}

resource "terraform_data" "flag" {
  input = { path = "${var.flags_dir}/${var.flag}.json", enabled = var.enabled }

  # Replacing on every change re-runs the create provisioner with the new value.
  triggers_replace = [var.enabled]

  provisioner "local-exec" {
    command = "mkdir -p '${var.flags_dir}' && printf '{\"enabled\": %s}\\n' '${var.enabled}' > '${self.input.path}'"
  }

  provisioner "local-exec" {
    when    = destroy
    command = "rm -f '${self.input.path}'"
  }
}

output "flag_file" {
  value = terraform_data.flag.input.path
}
