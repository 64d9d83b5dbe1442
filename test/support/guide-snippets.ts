/**
 * Code from the API guide (../shared/seed/api-authentication-guide.txt), word for word, for
 * tests that run it against the server. "Handling Rate Limits": the Python retry loop.
 */
export const GUIDE_PYTHON_RETRY = `
def make_api_request_with_retry(url, headers):
    """Make API request with automatic retry on rate limit"""
    max_retries = 3
    retry_count = 0
    while retry_count < max_retries:
        response = requests.get(url, headers=headers)
        if response.status_code == 429:  # Too Many Requests
            # Get retry after time
            retry_after = int(response.headers.get('X-RateLimit-Reset-After', 60))
            print(f"Rate limited. Waiting {retry_after} seconds...")
            time.sleep(retry_after)
            retry_count += 1
            continue
        return response
    raise Exception("Max retries exceeded")
`;
