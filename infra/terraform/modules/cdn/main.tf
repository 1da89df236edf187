# The CDN: one CloudFront distribution on the app's domain (app_domain, its certificate made here in
# us-east-1). The SPA's files come from S3 (read through origin access control; the bucket stays
# private) and everything under /v1/ goes to the Kurt edge, cached only where the edge says so with
# Cache-Control (e.g. /v1/openapi.json, public GETs); with Authorization in the cache key, one
# caller never sees another's response. Server-Sent Events are never cached.
# Short-link redirects (GET /{code}) do not pass through the CDN: each click must reach the edge to
# be counted, so the short domain points at the ingress load balancer directly. That same host is
# the CDN's origin for /v1/*: CloudFront drops the viewer's Host (the app's domain) and sends the
# origin's name instead, so the origin must be a host the ingress has a rule and a certificate for,
# and the short domain is one already (deploy/overlays/prod: the Ingress and kurt-public-tls).

locals {
  spa_origin  = "spa"
  edge_origin = "edge"
  # AWS-managed policies.
  caching_optimized_policy_id = "658327ea-f89d-4fab-a63d-7e88639e58f6"
  caching_disabled_policy_id  = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
  all_viewer_except_host_id   = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
  # Server-Sent Events (server-streaming routes other than downloads: /v1/notifications:stream).
  sse_path_patterns = ["/v1/*:stream"]
}

# The distribution's certificate: CloudFront takes only ACM certificates from us-east-1. Validated
# through the public zone, so it renews by itself.
resource "aws_acm_certificate" "app" {
  provider          = aws.us_east_1
  domain_name       = var.app_domain
  validation_method = "DNS"
  options {
    certificate_transparency_logging_preference = "ENABLED"
  }
  lifecycle {
    create_before_destroy = true
  }
  tags = var.tags
}

resource "aws_route53_record" "app_validation" {
  for_each = {
    for o in aws_acm_certificate.app.domain_validation_options : o.domain_name => o
  }
  zone_id         = var.zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "app" {
  provider                = aws.us_east_1
  certificate_arn         = aws_acm_certificate.app.arn
  validation_record_fqdns = [for r in aws_route53_record.app_validation : r.fqdn]
}

# Security headers on every response. CORS stays the edge's business (it knows the SPA's origins).
resource "aws_cloudfront_response_headers_policy" "security" {
  name    = "${var.name}-security-headers"
  comment = "HSTS, nosniff, frame and referrer policy"
  security_headers_config {
    strict_transport_security {
      access_control_max_age_sec = 31536000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
    content_type_options {
      override = true
    }
    frame_options {
      frame_option = "DENY"
      override     = true
    }
    referrer_policy {
      referrer_policy = "strict-origin-when-cross-origin"
      override        = true
    }
    xss_protection {
      protection = true
      mode_block = true
      override   = true
    }
  }
}

resource "aws_cloudfront_origin_access_control" "spa" {
  name                              = "${var.name}-spa"
  description                       = "CloudFront reads the SPA bucket"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

# The edge decides what may be cached: nothing by default (TTL 0), up to a day when it says so.
resource "aws_cloudfront_cache_policy" "edge" {
  name        = "${var.name}-edge-honour-origin"
  comment     = "Cache /v1/* only as the edge's Cache-Control allows"
  min_ttl     = 0
  default_ttl = 0
  max_ttl     = 86400

  parameters_in_cache_key_and_forwarded_to_origin {
    enable_accept_encoding_gzip   = true
    enable_accept_encoding_brotli = true
    cookies_config {
      cookie_behavior = "none"
    }
    headers_config {
      header_behavior = "whitelist"
      headers {
        # Origin too: the edge's CORS headers depend on it (it answers with Vary: Origin, which
        # CloudFront does not honour by itself).
        items = ["Authorization", "Origin"]
      }
    }
    query_strings_config {
      query_string_behavior = "all"
    }
  }
}

# The SPA is routed client-side: a path without a file extension gets index.html.
resource "aws_cloudfront_function" "spa_index" {
  name    = "${var.name}-spa-index"
  runtime = "cloudfront-js-2.0"
  comment = "Serve index.html for the SPA's client-side routes"
  publish = true
  code    = <<-JS
    function handler(event) {
      var request = event.request;
      if (!request.uri.includes('.')) {
        request.uri = '/index.html';
      }
      return request;
    }
  JS
}

resource "aws_wafv2_web_acl" "this" {
  provider    = aws.us_east_1
  name        = "${var.name}-cdn"
  description = "Kurt CDN: AWS managed rules and a per-address rate limit on the API"
  scope       = "CLOUDFRONT"

  default_action {
    allow {}
  }

  rule {
    name     = "common"
    priority = 10
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "known-bad-inputs"
    priority = 20
    override_action {
      none {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  # Counted, not blocked: people on VPNs and privacy relays are users too. The sampled requests
  # show whether abuse comes from there.
  rule {
    name     = "anonymous-ip"
    priority = 25
    override_action {
      count {}
    }
    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAnonymousIpList"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "api-rate-limit"
    priority = 30
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.api_rate_limit_per_5min
        aggregate_key_type = "IP"
        scope_down_statement {
          byte_match_statement {
            search_string         = "/v1/"
            positional_constraint = "STARTS_WITH"
            field_to_match {
              uri_path {}
            }
            text_transformation {
              priority = 0
              type     = "NONE"
            }
          }
        }
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "api-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name}-cdn"
    sampled_requests_enabled   = true
  }

  tags = var.tags
}

# WAF's own logs: the group name must start with aws-waf-logs- and live beside the ACL.
resource "aws_cloudwatch_log_group" "waf" {
  provider          = aws.us_east_1
  name              = "aws-waf-logs-${var.name}-cdn"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.waf_log_kms_key_arn
  tags              = var.tags
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  provider                = aws.us_east_1
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]
  # Never log the callers' API keys.
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }
}

resource "aws_cloudfront_distribution" "this" {
  #checkov:skip=CKV_AWS_310:origin failover needs a second origin of the same content; the SPA bucket is one regional bucket and the edge has its own multi-zone load balancer
  #checkov:skip=CKV_AWS_374:Kurt serves users everywhere; no geo restriction
  enabled             = true
  is_ipv6_enabled     = true
  comment             = "Kurt: SPA and API"
  aliases             = [aws_acm_certificate.app.domain_name]
  price_class         = var.price_class
  default_root_object = "index.html"
  http_version        = "http2and3"
  web_acl_id          = aws_wafv2_web_acl.this.arn

  origin {
    origin_id                = local.spa_origin
    domain_name              = var.spa_bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.spa.id
  }

  # The ingress-nginx load balancer, by the short domain: the Host the ingress sees, the name its
  # certificate carries and CloudFront checks.
  origin {
    origin_id   = local.edge_origin
    domain_name = var.edge_origin_domain
    custom_origin_config {
      http_port                = 80
      https_port               = 443
      origin_protocol_policy   = "https-only"
      origin_ssl_protocols     = ["TLSv1.2"]
      origin_keepalive_timeout = 60
      # Longer than the gap between an event stream's writes: the edge sends a keepalive comment
      # every 15 s (kurt::edge::EdgeOptions::sse_keepalive).
      origin_read_timeout = 60
    }
  }

  default_cache_behavior {
    target_origin_id           = local.spa_origin
    viewer_protocol_policy     = "redirect-to-https"
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = local.caching_optimized_policy_id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id

    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.spa_index.arn
    }
  }

  # Event streams before the rest of /v1/*: never cached, never compressed (CloudFront would buffer
  # them), each request straight to the edge. With caching disabled, AllViewerExceptHostHeader
  # forwards Authorization too.
  dynamic "ordered_cache_behavior" {
    for_each = local.sse_path_patterns
    content {
      path_pattern               = ordered_cache_behavior.value
      target_origin_id           = local.edge_origin
      viewer_protocol_policy     = "https-only"
      allowed_methods            = ["GET", "HEAD", "OPTIONS"]
      cached_methods             = ["GET", "HEAD"]
      compress                   = false
      cache_policy_id            = local.caching_disabled_policy_id
      origin_request_policy_id   = local.all_viewer_except_host_id
      response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
    }
  }

  ordered_cache_behavior {
    path_pattern               = "/v1/*"
    target_origin_id           = local.edge_origin
    viewer_protocol_policy     = "https-only"
    allowed_methods            = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = aws_cloudfront_cache_policy.edge.id
    origin_request_policy_id   = local.all_viewer_except_host_id
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    acm_certificate_arn      = aws_acm_certificate_validation.app.certificate_arn
    ssl_support_method       = "sni-only"
    minimum_protocol_version = "TLSv1.2_2021"
  }

  logging_config {
    bucket          = var.logs_bucket_domain_name
    prefix          = "cloudfront/"
    include_cookies = false
  }

  tags = var.tags
}

# The app's domain is the distribution (IPv4 and IPv6).
resource "aws_route53_record" "app" {
  for_each = toset(["A", "AAAA"])
  zone_id  = var.zone_id
  name     = var.app_domain
  type     = each.value
  alias {
    name                   = aws_cloudfront_distribution.this.domain_name
    zone_id                = aws_cloudfront_distribution.this.hosted_zone_id
    evaluate_target_health = false
  }
}

# Only this distribution may read the SPA bucket.
data "aws_iam_policy_document" "spa" {
  statement {
    sid       = "CloudFrontReadsSpa"
    actions   = ["s3:GetObject"]
    resources = ["${var.spa_bucket_arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "AWS:SourceArn"
      values   = [aws_cloudfront_distribution.this.arn]
    }
  }
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      var.spa_bucket_arn,
      "${var.spa_bucket_arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "spa" {
  bucket = var.spa_bucket
  policy = data.aws_iam_policy_document.spa.json
}
