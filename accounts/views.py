from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    accounts = request.user.socialaccount_set.all()  # type: ignore[union-attr]
    return render(request, "accounts/profile.html", {"social_accounts": accounts})
