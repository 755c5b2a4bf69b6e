variable "effects_file" {
  type = string
}

resource "terraform_data" "item" {
  input = 
}
