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

$key = [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($cert)
if ($null -eq $key) {
    $key = [System.Security.Cryptography.X509Certificates.ECDsaCertificateExtensions]::GetECDsaPrivateKey($cert)
}
$info.key_class = $key.GetType().Name
if ($key -is [System.Security.Cryptography.RSACryptoServiceProvider]) {
    $info.provider = 'CAPI'
    $info.machine_key = $key.CspKeyContainerInfo.MachineKeyStore
    $info.exportable = $key.CspKeyContainerInfo.Exportable
    $file = Join-Path -Path $machineKeys -ChildPath $key.CspKeyContainerInfo.UniqueKeyContainerName
    $info.key_opens = $key.SignData([byte[]](1, 2, 3), 'SHA256').Length -gt 0
}
else {
    $info.provider = 'CNG'
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
