# Certificate renewal for the CertificateExpiringSoon playbook. It needs no provider download:
# terraform_data is built into Terraform. The renewal itself is the operator's own command
# (certbot by default); set `renew_command` in the workspace's tfvars for another ACME client.

variable "certificate" {
  type        = string
  description = "The certificate's name as the renewal command knows it."

  validation {
    # Alert labels reach this variable: refuse anything a shell could misread.
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", var.certificate))
    error_message = "certificate must be letters, digits, '.', '_' or '-'."
  }
}

variable "renew_now" {
  type        = bool
  description = "true forces a renewal on this apply; false leaves the certificate alone."
}

variable "renew_command" {
  type        = string
  default     = "certbot renew --force-renewal --cert-name"
  description = "Command that renews one certificate; the certificate name is appended."
}

resource "terraform_data" "renewal" {
  input = { certificate = var.certificate }

  # A new value on each forced apply replaces the resource, which re-runs the provisioner.
  triggers_replace = [var.certificate, var.renew_now ? plantimestamp() : "steady"]

  provisioner "local-exec" {
    command = "${var.renew_command} '${var.certificate}'"
  }
}

output "renewed_certificate" {
  value = terraform_data.renewal.input.certificate
}
