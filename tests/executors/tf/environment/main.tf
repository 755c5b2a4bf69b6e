# Test module: records the names of the environment variables a local-exec command sees.

variable "effects_file" {
  type = string
}

resource "terraform_data" "env" {
  provisioner "local-exec" {
    command = "env | cut -d= -f1 | sort > '${var.effects_file}'"
  }
}
