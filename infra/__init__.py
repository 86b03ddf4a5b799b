"""The AWS CDK app (one stack, one construct per feature). Built with the infrastructure issue."""
