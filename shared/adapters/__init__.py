"""Adapters to AWS services: ``dynamo`` (ClientError translation, update expressions, page tokens)
and ``sqs`` (the FIFO sender).  The only modules that turn boto3's errors into the domain's.
"""
