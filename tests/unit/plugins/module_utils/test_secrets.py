"""_secrets: credentials in URLs never leave the collection's hands unmasked."""

from __future__ import annotations

import pytest

from hypothesis import given, strategies as st

from ansible_collections.capstan.release.plugins.module_utils import _secrets

# What RFC 3986 allows in userinfo unencoded (bar ':' for the password), and percent-escapes.
USERINFO = st.text(alphabet='abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&()*+,;=', min_size=1,
                   max_size=20) | st.just('p%40ss%2Fw0rd')


@pytest.mark.parametrize('text, masked', [
    ('https://deploy:s3cret@git.example.com/app.git', 'https://***@git.example.com/app.git'),
    ('https://ghp_token@github.com/org/app.git', 'https://***@github.com/org/app.git'),
    ('ssh://git@git.example.com:2222/app.git', 'ssh://***@git.example.com:2222/app.git'),
    ('git+https://u:p@h/x', 'git+https://***@h/x'),
    ('https://files.example.com/app.tgz?token=abc', 'https://files.example.com/app.tgz?token=***'),
    ('https://s3/app.tgz?X-Amz-Signature=f00&X-Amz-Credential=AKIA&page=2',
     'https://s3/app.tgz?X-Amz-Signature=***&X-Amz-Credential=***&page=2'),
    ('https://h/a.tgz#access_key=k', 'https://h/a.tgz#access_key=***'),
    ('https://h/a.tgz?password=', 'https://h/a.tgz?password='),
])
def test_mask_hides_userinfo_and_secret_parameters(text, masked):
    assert _secrets.mask(text) == masked


@pytest.mark.parametrize('text', [
    'https://git.example.com/app.git', 'git@github.com:org/app.git', '/srv/app.tgz', 'https://h/a.tgz?page=2&sort=name',
    'mail me at ops@example.com', '',
])
def test_mask_leaves_text_without_credentials_as_it_is(text):
    assert _secrets.mask(text) == text
    assert not _secrets.has_secret(text)


def test_mask_finds_every_url_in_a_command_line_or_an_error():
    line = ("fatal: could not read from 'https://a:one@h1/x.git' nor https://b:two@h2/y.git, "
            'see https://h3/z?api_token=three')
    masked = _secrets.mask(line)
    assert not any(secret in masked for secret in ('one', 'two', 'three'))
    assert masked == ("fatal: could not read from 'https://***@h1/x.git' nor https://***@h2/y.git, "
                      'see https://h3/z?api_token=***')


def test_a_password_holding_an_at_sign_is_masked_whole():
    # The credential is everything between :// and the last @ before the host (the module's own rule).
    assert _secrets.mask('https://deploy:p@ss@git.example.com/app.git') == 'https://***@git.example.com/app.git'


@given(USERINFO, USERINFO)
def test_mask_never_leaves_any_of_the_userinfo(user, password):
    assert _secrets.mask('https://%s:%s@git.example.com/app.git' % (user, password)) == 'https://***@git.example.com/app.git'


@pytest.mark.parametrize('value', [None, 3, b'https://u:p@h/x', ['https://u:p@h/x']])
def test_mask_returns_what_is_not_text_as_it_is(value):
    assert _secrets.mask(value) is value
    assert _secrets.has_secret(value) is False


def test_has_secret():
    assert _secrets.has_secret('clone https://u:p@h/x.git')
    assert _secrets.has_secret('https://h/x?sig=abc')


def test_mask_all_masks_every_string_inside_lists_and_dicts():
    result = {'msg': 'https://u:p@h/x.git', 'cmd': ['git', 'clone', 'https://t@h/y.git'], 'rc': 128,
              'nested': {'urls': ('https://h/z?token=t',), 'ok': True}}
    assert _secrets.mask_all(result) == {'msg': 'https://***@h/x.git', 'cmd': ['git', 'clone', 'https://***@h/y.git'],
                                         'rc': 128, 'nested': {'urls': ['https://h/z?token=***'], 'ok': True}}


def test_mask_is_idempotent():
    once = _secrets.mask('https://u:p@h/x.git?token=t')
    assert _secrets.mask(once) == once


@pytest.mark.parametrize('url, public', [
    ('https://deploy:s3cret@git.example.com/app.git', 'https://git.example.com/app.git'),
    ('http://deployer:tok@10.0.0.1:8080/app.git', 'http://10.0.0.1:8080/app.git'),
    ('https://ghp_token@github.com/org/app.git', 'https://github.com/org/app.git'),
    ('HTTPS://u:p@h/x', 'HTTPS://h/x'),
    ('ssh://deploy:pw@git.example.com/app.git', 'ssh://git.example.com/app.git'),
    ('https://deploy:p@ss@git.example.com/app.git', 'https://git.example.com/app.git'),
    ('ssh://git@git.example.com:2222/app.git', 'ssh://git@git.example.com:2222/app.git'),
    ('git@github.com:org/app.git', 'git@github.com:org/app.git'),
    ('https://git.example.com/app.git', 'https://git.example.com/app.git'),
    ('file:///srv/origin', 'file:///srv/origin'),
])
def test_without_credentials_takes_the_credential_out_of_one_url(url, public):
    assert _secrets.without_credentials(url) == public


@given(USERINFO, USERINFO)
def test_without_credentials_never_leaves_any_of_the_userinfo(user, password):
    assert _secrets.without_credentials('https://%s:%s@git.example.com/app.git' % (user, password)) == 'https://git.example.com/app.git'


def test_without_credentials_returns_what_is_not_text_as_it_is():
    assert _secrets.without_credentials(None) is None


def test_shown_puts_the_masked_url_where_no_log_marked_it_and_masks_the_rest():
    url = 'https://deploy:s3cret@git.example.com/app.git'
    result = {'msg': "deploy_version 'x' is not a branch, tag or commit of ********", 'rc': 1,
              'invocation': {'module_args': {'repo_url': '********', 'other': ['see https://u:p@h/y']}}}
    assert _secrets.shown(result, url) == {
        'msg': "deploy_version 'x' is not a branch, tag or commit of https://***@git.example.com/app.git", 'rc': 1,
        'invocation': {'module_args': {'repo_url': 'https://***@git.example.com/app.git', 'other': ['see https://***@h/y']}}}
    assert _secrets.shown('deploy_src ******** is not a file on this host', '/srv/app.tgz') == \
        'deploy_src /srv/app.tgz is not a file on this host'
    assert _secrets.shown('left as it is: ********', None) == 'left as it is: ********'


@pytest.mark.parametrize('url, holds', [
    ('https://deploy:s3cret@git.example.com/app.git', True), ('https://ghp_token@github.com/org/app.git', True),
    ('https://h/app.git?private_token=x', True), ('ssh://git@git.example.com/app.git', False),
    ('git@github.com:org/app.git', False), ('https://git.example.com/app.git', False), (None, False),
])
def test_has_credential_tells_a_credential_from_a_user_name(url, holds):
    assert _secrets.has_credential(url) is holds
