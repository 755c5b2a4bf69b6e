# Test module: every created or destroyed item appends one line to `effects_file`, so a test can count
# exactly which effects happened. terraform_data is built into Terraform: no provider download.

variable "effects_file" {
  type        = string
  description = "Absolute path of the file the provisioners append to."
}

variable "items" {
  type        = map(string)
  default     = {}
  description = "One terraform_data per key; changing a value is an in-place update."
}

variable "generation" {
  type        = number
  default     = 1
  description = "Changing it replaces every item (delete, then create)."
}

variable "sleep_seconds" {
  type        = number
  default     = 0
  description = "How long each creation sleeps after writing its line."
}

variable "fail_item" {
  type        = string
  default     = ""
  description = "The key whose creation fails with exit status 3."
}

resource "terraform_data" "item" {
  for_each         = var.items
  input            = { value = each.value, log = var.effects_file }
  triggers_replace = [var.generation]

  provisioner "local-exec" {
    # `exec`: Terraform stops an interrupted provisioner by killing its process, so the sleep must be it.
    command = "echo 'create ${each.key}=${each.value}' >> '${var.effects_file}'; if [ '${each.key}' = '${var.fail_item}' ]; then echo 'item ${each.key} refused to start' >&2; exit 3; fi; exec sleep ${var.sleep_seconds}"
  }

  provisioner "local-exec" {
    when    = destroy
    command = "echo 'destroy ${each.key}' >> '${self.input.log}'"
  }
}

output "values" {
  value = { for key, item in terraform_data.item : key => item.output.value }
}
