# Test probe, independent of the collection's modules: reads the certificate through the Cert: drive,
# proves its key by signing, and reads the key file's ACL with Get-Acl.
[CmdletBinding()]
param (
    [Parameter(Mandatory = $true)]
    [string]
    $Path,

    [string]
    $Account
)

$Ansible.Changed = $false
$machineKeys = Join-Path -Path $env:ProgramData -ChildPath 'Microsoft\Crypto\RSA\MachineKeys'
$cngKeys = Join-Path -Path $env:ProgramData -ChildPath 'Microsoft\Crypto\Keys'
$info = @{
    exists = $false
    key_files = @(Get-ChildItem -LiteralPath $machineKeys -Force).Count +
        @(Get-ChildItem -LiteralPath $cngKeys -Force).Count
}
$cert = Get-Item -LiteralPath $Path -ErrorAction SilentlyContinue
if ($null -eq $cert) {
    return $info
}
$info.exists = $true
$info.friendly_name = $cert.FriendlyName
$info.has_private_key = $cert.HasPrivateKey
$info.key_opens = $false
if (-not $cert.HasPrivateKey) {
    return $info
}

# The legacy PrivateKey property is a CAPI object for CAPI keys and null (or an error) for CNG keys.
$capiKey = $null
try {
    $capiKey = $cert.PrivateKey
}
catch {
    $capiKey = $null
}
if ($capiKey -is [System.Security.Cryptography.RSACryptoServiceProvider]) {
    $info.provider = 'CAPI'
    $info.key_class = $capiKey.GetType().Name
    $info.machine_key = $capiKey.CspKeyContainerInfo.MachineKeyStore
    $info.exportable = $capiKey.CspKeyContainerInfo.Exportable
    $file = Join-Path -Path $machineKeys -ChildPath $capiKey.CspKeyContainerInfo.UniqueKeyContainerName
    # SHA-1: a PROV_RSA_FULL container cannot sign SHA-256, and any signature proves the key opens.
    $info.key_opens = $capiKey.SignData([byte[]](1, 2, 3), 'SHA1').Length -gt 0
}
else {
    $key = [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($cert)
    if ($null -eq $key) {
        $key = [System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions]::GetECDsaPrivateKey($cert)
    }
    $info.provider = 'CNG'
    $info.key_class = $key.GetType().Name
    $info.machine_key = $key.Key.IsMachineKey
    $info.exportable = ($key.Key.ExportPolicy -band 1) -ne 0
    $file = Join-Path -Path $cngKeys -ChildPath $key.Key.UniqueName
    if ($key -is [System.Security.Cryptography.RSA]) {
        $signature = $key.SignData([byte[]](1, 2, 3), [System.Security.Cryptography.HashAlgorithmName]::SHA256,
            [System.Security.Cryptography.RSASignaturePadding]::Pkcs1)
    }
    else {
        $signature = $key.SignData([byte[]](1, 2, 3), [System.Security.Cryptography.HashAlgorithmName]::SHA256)
    }
    $info.key_opens = $signature.Length -gt 0
}

if ($Account -and $info.machine_key -and (Test-Path -LiteralPath $file)) {
    $sid = (New-Object -TypeName System.Security.Principal.NTAccount -ArgumentList $Account).Translate(
        [System.Security.Principal.SecurityIdentifier])
    $mask = 0
    $rules = (Get-Acl -LiteralPath $file).GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier])
    foreach ($rule in $rules) {
        if ($rule.IdentityReference -eq $sid -and $rule.AccessControlType -eq 'Allow') {
            $raw = [int]$rule.FileSystemRights
            # Map generic bits the way the file system does, independently of the collection's helper.
            if ($raw -band [int]0x80000000) { $raw = $raw -bor 0x120089 }
            if ($raw -band 0x10000000) { $raw = $raw -bor 0x1F01FF }
            $mask = $mask -bor ($raw -band 0x1F01FF)
        }
    }
    $info.account_read = ($mask -band 0x120089) -eq 0x120089
    $info.account_full_control = ($mask -band 0x1F01FF) -eq 0x1F01FF
}
$info
